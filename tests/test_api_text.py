"""The text front end through the service: the preview routes, normalisation on and off, and voice languages,
against a real API and worker (espeak, which is deterministic, so equal text gives equal audio)."""

from __future__ import annotations

import io
import json
import math
import os
import threading
import wave
from collections.abc import Iterator
from multiprocessing.connection import Listener
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tasks.spec import SynthesisSpec
from tests.conftest import Stack, redis_db_url
from tests.support.api import assert_error
from tests.support.jobs import SyncJobs
from tests.support.processes import start_api
from tests.support.s3 import free_port
from workers.engine_host.client import EngineClient
from workers.engine_host.messages import EngineInfo
from workers.engine_host.server import EngineServer
from workers.engines.base import ChunkRequest, EngineOutput
from workers.engines.espeak import EspeakEngine
from workers.pipeline import PipelineHooks, SynthesisPipeline

pytestmark = pytest.mark.integration

ISSUE_TEXT = "Call 555-1234 by 12/01/2026, costs $3.50, see https://example.com"
ISSUE_SPOKEN = (
    "Call five five five, one two three four by December first, twenty twenty-six, costs three dollars and fifty "
    "cents, see example dot com"
)
FRENCH = "Le 12/01/2026, il a payé 3,50 € pour 5 croissants."


def preview(base_url: str, body: dict[str, Any], path: str = "/v1/audio/speech/preview") -> httpx.Response:
    return httpx.post(f"{base_url}{path}", json=body, timeout=30)


def speech(stack: Stack, voice: str, text: str) -> bytes:
    body = {"model": "tts-1", "voice": voice, "input": text, "response_format": "pcm"}
    response = httpx.post(f"{stack.base_url}/v1/audio/speech", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.content


def custom_duration(stack: Stack, job_input: dict[str, Any]) -> float:
    state = httpx.post(f"{stack.base_url}/runsync", json={"input": job_input}, timeout=60).json()
    assert state["status"] == "COMPLETED", state
    duration: float = state["output"]["duration_sec"]
    return duration


@pytest.fixture(scope="module")
def french_voice(stack: Stack) -> str:
    """A voice whose voices.json entry says it speaks French (no clip: espeak uses its own voice anyway)."""
    path = Path(stack.env["DATA_DIR"]) / "voices" / "voices.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    voices = {"alloy": {"audio_file": "voice_alloy.wav"}, "amelie": {"audio_file": "amelie.wav", "language": "fr"}}
    path.write_text(json.dumps(voices))
    return "amelie"


@pytest.fixture(scope="module")
def unnormalized_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API with TEXT_NORMALIZATION=false (no worker: previews need none)."""
    url = redis_db_url(11)
    redis.Redis.from_url(url).flushdb()
    env = {"REDIS_URL": url, "DATA_DIR": str(tmp_path_factory.mktemp("plain") / "data"), "TEXT_NORMALIZATION": "0"}
    port = free_port()
    api = start_api(env, tmp_path_factory.mktemp("plain-logs"), port)
    yield f"http://127.0.0.1:{port}"
    api.stop()


def test_preview_shows_the_normalised_chunks(stack: Stack) -> None:
    response = preview(stack.base_url, {"model": "tts-1", "voice": "alloy", "input": ISSUE_TEXT})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "object": "speech.preview",
        "model": "espeak",
        "voice": "alloy",
        "language": "en-us",
        "normalized": True,
        "chunks": [ISSUE_SPOKEN],
    }


def test_preview_of_a_long_text_is_its_chunks_and_tags_stay_whole(stack: Stack) -> None:
    text = " ".join(f"[laugh] Item {n} costs ${n}.99 and ships on 2026-0{n % 9 + 1}-15." for n in range(1, 15))
    chunks = preview(stack.base_url, {"model": "tts-1", "voice": "alloy", "input": text}).json()["chunks"]
    assert len(chunks) > 1
    assert all(len(chunk) <= stack.settings.max_chunk_chars for chunk in chunks)
    assert " ".join(chunks).count("[laugh]") == 14
    assert not any(character.isdigit() for character in "".join(chunks))


class RecordingEngine:
    """The real espeak engine, noting the text of every request it is given."""

    def __init__(self, engine: EspeakEngine) -> None:
        self._engine = engine
        self.name = engine.name
        self.texts: list[str] = []

    @property
    def sample_rate(self) -> int:
        return self._engine.sample_rate

    @property
    def device(self) -> str:
        return self._engine.device

    @property
    def max_batch(self) -> int:
        return self._engine.max_batch

    @property
    def busy(self) -> bool:
        return self._engine.busy

    def load(self) -> None:
        self._engine.load()

    def submit(self, request: ChunkRequest) -> None:
        self.texts.append(request.text)
        self._engine.submit(request)

    def cancel(self, request_id: str) -> None:
        self._engine.cancel(request_id)

    def step(self) -> list[EngineOutput]:
        return self._engine.step()

    def unload(self) -> None:
        self._engine.unload()


@pytest.fixture(scope="module")
def recorded(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RecordingEngine, EngineClient]]:
    """The worker's engine server, in a thread of this process, around a recording espeak; and a client of it."""
    engine = RecordingEngine(EspeakEngine(stack.settings))
    engine.load()
    address, authkey = str(tmp_path_factory.mktemp("engine") / "engine.sock"), os.urandom(16)
    listener = Listener(address, family="AF_UNIX", authkey=authkey)
    info = EngineInfo(engine.name, engine.sample_rate, engine.device, engine.max_batch)
    threading.Thread(target=EngineServer(engine, listener, info).serve_forever, daemon=True).start()
    client = EngineClient(address, authkey, connect_timeout_s=10)
    yield engine, client
    client.close()


@pytest.mark.parametrize(
    "job_input",
    [
        {"model": "tts-1", "voice": "alloy", "input": f"{ISSUE_TEXT}. " * 8},
        {"text": f"Dr. Smith paid £1.2m on 3/4/2026 at 3:30 pm. {ISSUE_TEXT}. " * 5},
        {"text": f"{ISSUE_TEXT}. " * 6, "normalize": False},
    ],
)
def test_the_preview_is_exactly_what_the_engine_receives(
    stack: Stack, recorded: tuple[RecordingEngine, EngineClient], job_input: dict[str, Any]
) -> None:
    shown = preview(stack.base_url, {"input": job_input}, path="/v2/endpoint/preview").json()["chunks"]
    state = httpx.post(f"{stack.base_url}/runsync", json={"input": job_input}, timeout=60).json()
    assert state["status"] == "COMPLETED", state
    record = SyncJobs(stack.settings).get(state["id"])
    assert record is not None
    assert record.chunks_total == len(shown)
    # The stored job through the worker's own pipeline and engine server, around the real engine: the same texts.
    engine, client = recorded
    engine.texts.clear()
    hooks = PipelineHooks(
        on_audio=lambda _: None,
        on_samples=lambda _: None,
        on_progress=lambda _done, _total: True,
        keep_going=lambda: True,
    )
    spec = SynthesisSpec.model_validate(record.request)
    SynthesisPipeline(client, stack.settings).run(spec, None, hooks, request_prefix=state["id"])
    assert engine.texts == shown


def test_the_worker_speaks_the_normalised_text(stack: Stack) -> None:
    spoken = preview(stack.base_url, {"input": {"text": ISSUE_TEXT}}, path="/preview").json()["chunks"]
    assert spoken == [ISSUE_SPOKEN]
    normalized = custom_duration(stack, {"text": ISSUE_TEXT, "response_format": "wav"})
    as_written = custom_duration(stack, {"text": ISSUE_TEXT, "normalize": False, "response_format": "wav"})
    by_hand = custom_duration(stack, {"text": ISSUE_SPOKEN, "normalize": False, "response_format": "wav"})
    assert normalized == by_hand
    assert normalized != as_written


def test_custom_request_can_turn_normalisation_off(stack: Stack) -> None:
    body = {"input": {"text": ISSUE_TEXT, "normalize": False}}
    shown = preview(stack.base_url, body, path="/preview").json()
    assert shown["normalized"] is False
    assert shown["chunks"] == [ISSUE_TEXT]


def test_the_setting_turns_normalisation_off_for_every_request(unnormalized_api: str) -> None:
    openai = preview(unnormalized_api, {"model": "tts-1", "voice": "alloy", "input": ISSUE_TEXT}).json()
    custom = preview(unnormalized_api, {"input": {"text": ISSUE_TEXT, "normalize": True}}, path="/preview").json()
    for shown in (openai, custom):
        assert shown["normalized"] is False
        assert shown["chunks"] == [ISSUE_TEXT]


def test_other_languages_are_not_normalised(stack: Stack) -> None:
    shown = preview(stack.base_url, {"input": {"text": FRENCH, "language": "fr"}}, path="/preview").json()
    assert shown["language"] == "fr"
    assert shown["normalized"] is False
    assert shown["chunks"] == [FRENCH]


def test_a_voice_with_a_language_speaks_it_on_the_openai_route(stack: Stack, french_voice: str) -> None:
    listed = {voice["name"]: voice for voice in httpx.get(f"{stack.base_url}/v1/audio/voices").json()["data"]}
    assert listed[french_voice]["language"] == "fr"
    assert listed["alloy"]["language"] is None
    shown = preview(stack.base_url, {"model": "tts-1", "voice": french_voice, "input": FRENCH}).json()
    assert (shown["language"], shown["normalized"], shown["chunks"]) == ("fr", False, [FRENCH])
    # espeak's French voice, not its English one, reads the text: the audio differs.
    french, english = speech(stack, french_voice, "Bonjour."), speech(stack, "alloy", "Bonjour.")
    assert french and english and french != english


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/audio/speech/preview", {"model": "tts-1", "voice": "nobody", "input": "Hi."}, "voice"),
        ("/v1/audio/speech/preview", {"model": "tts-1", "voice": "alloy", "input": "  "}, "input"),
        ("/v1/audio/speech/preview", {"model": "tts-1", "voice": "alloy"}, "input"),
        ("/v1/audio/speech/preview", {"model": "nope", "voice": "alloy", "input": "Hi."}, "model"),
        ("/preview", {"input": {"text": "Hi.", "language": "not a tag"}}, "input.language"),
        ("/preview", {"input": {"text": "Hi.", "normalize": "sometimes"}}, "input.normalize"),
        ("/v2/e/preview", {"input": {"text": ""}}, "input.text"),
    ],
)
def test_preview_errors_name_the_parameter(stack: Stack, path: str, body: dict[str, Any], param: str) -> None:
    assert_error(preview(stack.base_url, body, path=path), 400, param)


def test_voice_language_can_be_set_on_upload_and_changed(stack: Stack) -> None:
    clip = io.BytesIO()
    with wave.open(clip, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(24000)
        out.writeframes(
            b"".join(round(9000 * math.sin(n / 20)).to_bytes(2, "little", signed=True) for n in range(48000))
        )
    files = {"file": ("clip.wav", clip.getvalue(), "audio/wav")}
    url = f"{stack.base_url}/v1/audio/voices"
    bad = httpx.post(url, data={"name": "bad-tag", "language": "french!"}, files=files, timeout=30)
    assert_error(bad, 400, "language")
    created = httpx.post(url, data={"name": "hans", "language": "de"}, files=files, timeout=30)
    assert created.status_code == 201, created.text
    assert created.json()["language"] == "de"
    changed = httpx.patch(f"{url}/hans", json={"language": "de-AT"}, timeout=30)
    assert changed.status_code == 200 and changed.json()["language"] == "de-AT"
    assert_error(httpx.patch(f"{url}/hans", json={"language": "?"}, timeout=30), 400, "language")
    # Well formed but not spoken by the served engine: refused now, not in every job that would use the voice.
    unspoken = httpx.post(url, data={"name": "klaus", "language": "zz"}, files=files, timeout=30)
    assert assert_error(unspoken, 400, "language")["code"] == "unsupported_language"
    assert_error(httpx.patch(f"{url}/hans", json={"language": "xx-DE"}, timeout=30), 400, "language")
    assert preview(stack.base_url, {"model": "tts-1", "voice": "hans", "input": "5"}).json()["language"] == "de-AT"
