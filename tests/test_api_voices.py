"""Voices over the API (upload, list, enable, delete), hand edits of voices.json, and the OpenAPI document."""

from __future__ import annotations

import fcntl
import io
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av
import httpx
import openai
import pytest
from openai import OpenAI

from tests.conftest import Stack
from tests.support.api import assert_error
from tests.support.audio import wav_bytes

pytestmark = pytest.mark.integration

TEXT = "A voice of its own."
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


def new_name() -> str:
    return f"voice-{uuid.uuid4().hex[:8]}"


def upload(
    stack: Stack, name: str, data: bytes, filename: str = "clip.wav", description: str | None = None
) -> httpx.Response:
    form = {"name": name, **({"description": description} if description is not None else {})}
    files = {"file": (filename, data, "application/octet-stream")}
    return httpx.post(f"{stack.base_url}/v1/audio/voices", data=form, files=files, timeout=60)


def voices(stack: Stack) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{stack.base_url}/v1/audio/voices")
    assert response.status_code == 200
    return {voice["name"]: voice for voice in response.json()["data"]}


def speak(stack: Stack, voice: str) -> httpx.Response:
    body = {"model": "tts-1", "input": TEXT, "voice": voice, "response_format": "wav"}
    return httpx.post(f"{stack.base_url}/v1/audio/speech", json=body, timeout=60)


def assert_speaks(stack: Stack, voice: str) -> None:
    response = speak(stack, voice)
    assert response.status_code == 200, response.text
    with av.open(io.BytesIO(response.content), "r") as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "pcm_s16le"
        assert sum(frame.samples for frame in container.decode(stream)) > 0.5 * stream.rate


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{stack.base_url}/v1", api_key="x", max_retries=0, timeout=60) as sdk:
        yield sdk


@pytest.fixture
def registry_file(stack: Stack) -> Iterator[Path]:
    """voices.json in the store, written out (with the defaults) by a no-op API change; restored afterwards."""
    alloy = voices(stack)["alloy"]
    response = httpx.patch(f"{stack.base_url}/v1/audio/voices/alloy", json={"description": alloy["description"]})
    assert response.status_code == 200
    path = Path(stack.env["DATA_DIR"]) / "voices" / "voices.json"
    original = path.read_bytes()
    yield path
    path.write_bytes(original)


def test_upload_then_list_and_speak_with_it(stack: Stack, client: OpenAI) -> None:
    name = new_name()
    response = upload(stack, name, wav_bytes(), description="A steady test tone")
    assert response.status_code == 201, response.text
    assert response.json() == {
        "name": name,
        "description": "A steady test tone",
        "enabled": True,
        "has_reference_audio": True,
        "language": None,
        "builtin": False,
    }
    assert voices(stack)[name]["enabled"] is True
    speech = client.audio.speech.create(model="tts-1", voice=name, input=TEXT, response_format="flac")
    assert speech.response.headers["content-type"] == "audio/flac"
    # The custom job API takes the voice's name as its audio_prompt too.
    job = httpx.post(f"{stack.base_url}/runsync", json={"input": {"text": TEXT, "audio_prompt": name}}, timeout=60)
    assert job.json()["status"] == "COMPLETED", job.text


def test_upload_of_compressed_audio(stack: Stack) -> None:
    mp3 = httpx.post(
        f"{stack.base_url}/v1/audio/speech",
        json={"model": "tts-1", "input": "Make me a reference clip.", "voice": "alloy"},
        timeout=60,
    )
    assert mp3.headers["content-type"] == "audio/mpeg"
    name = new_name()
    response = upload(stack, name, mp3.content, filename="reference.mp3")
    assert response.status_code == 201, response.text
    assert_speaks(stack, name)


def test_duplicate_upload_is_409(stack: Stack) -> None:
    name = new_name()
    assert upload(stack, name, wav_bytes()).status_code == 201
    error = assert_error(upload(stack, name, wav_bytes(1.0)), 409, "name")
    assert name in error["message"]
    assert_error(upload(stack, "alloy", wav_bytes()), 409, "name")


@pytest.mark.parametrize(
    "data",
    [b"", b"this is not audio at all" * 100, b"RIFF\x00\x00\x00\x00WAVEfmt garbage", wav_bytes(61.0)],
    ids=["empty", "text", "broken-wav", "too-long"],
)
def test_upload_that_is_not_a_usable_clip_is_400_param_file(stack: Stack, data: bytes) -> None:
    name = new_name()
    assert_error(upload(stack, name, data), 400, "file")
    assert name not in voices(stack)


@pytest.mark.parametrize("name", ["../escape", "a b", ".hidden", "x" * 65, "voices.json/..", "-dash"])
def test_upload_with_a_bad_name_is_400_param_name(stack: Stack, name: str) -> None:
    assert_error(upload(stack, name, wav_bytes()), 400, "name")


def test_upload_without_a_file_is_400(stack: Stack) -> None:
    response = httpx.post(f"{stack.base_url}/v1/audio/voices", data={"name": new_name()})
    assert_error(response, 400, "file")


def test_upload_over_the_size_limit_is_413(stack: Stack) -> None:
    # Just over the clip limit: refused by the route, naming the file.
    error = assert_error(upload(stack, new_name(), b"\x00" * (DEFAULT_UPLOAD_LIMIT + 1)), 413, "file")
    assert str(DEFAULT_UPLOAD_LIMIT) in error["message"]
    # Far over: refused at the edge before the body is read.
    assert_error(upload(stack, new_name(), b"\x00" * (DEFAULT_UPLOAD_LIMIT + 512 * 1024)), 413, None)


def test_disabled_voice_cannot_speak_until_enabled_again(stack: Stack, client: OpenAI) -> None:
    name = new_name()
    assert upload(stack, name, wav_bytes()).status_code == 201
    response = httpx.patch(f"{stack.base_url}/v1/audio/voices/{name}", json={"enabled": False})
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert voices(stack)[name]["enabled"] is False
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.speech.create(model="tts-1", voice=name, input=TEXT)
    assert raised.value.param == "voice"
    available = raised.value.message.split("Available voices:")[1].replace(",", " ").split()
    assert "alloy" in available and name not in available
    job = {"input": {"model": "tts-1", "voice": name, "input": TEXT}}
    assert_error(httpx.post(f"{stack.base_url}/run", json=job), 400, "input.voice")
    response = httpx.patch(
        f"{stack.base_url}/v1/audio/voices/{name}", json={"enabled": True, "description": "Back again"}
    )
    expected = {
        "name": name,
        "description": "Back again",
        "enabled": True,
        "has_reference_audio": True,
        "language": None,
        "builtin": False,
    }
    assert response.json() == expected
    assert_speaks(stack, name)


def test_patch_errors(stack: Stack) -> None:
    assert_error(httpx.patch(f"{stack.base_url}/v1/audio/voices/{new_name()}", json={"enabled": False}), 404, "name")
    assert_error(httpx.patch(f"{stack.base_url}/v1/audio/voices/alloy", json={"colour": "blue"}), 400, "colour")
    assert_error(httpx.patch(f"{stack.base_url}/v1/audio/voices/alloy", json={"enabled": "maybe"}), 400, "enabled")
    assert_error(httpx.patch(f"{stack.base_url}/v1/audio/voices/alloy", json={"enabled": 0}), 400, "enabled")


def test_delete_removes_the_voice_and_its_clip(stack: Stack) -> None:
    name = new_name()
    assert upload(stack, name, wav_bytes()).status_code == 201
    clip = Path(stack.env["DATA_DIR"]) / "voices" / f"{name}.wav"
    assert clip.is_file()
    response = httpx.delete(f"{stack.base_url}/v1/audio/voices/{name}")
    assert response.status_code == 200
    assert response.json() == {"id": name, "object": "voice", "deleted": True}
    assert name not in voices(stack)
    assert not clip.exists()
    assert_error(speak(stack, name), 400, "voice")
    assert_error(httpx.delete(f"{stack.base_url}/v1/audio/voices/{name}"), 404, "name")
    # The name is free again.
    assert upload(stack, name, wav_bytes()).status_code == 201


def test_a_deleted_builtin_voice_is_restored_through_the_api(stack: Stack) -> None:
    shipped = voices(stack)["shimmer"]
    assert shipped["builtin"] is True
    assert httpx.delete(f"{stack.base_url}/v1/audio/voices/shimmer").status_code == 200
    assert "shimmer" not in voices(stack)
    assert_error(speak(stack, "shimmer"), 400, "voice")
    restored = httpx.put(f"{stack.base_url}/v1/audio/voices/shimmer")
    assert restored.status_code == 200, restored.text
    assert restored.json() == shipped == voices(stack)["shimmer"]
    assert_speaks(stack, "shimmer")
    # A changed one is put back as it ships, too.
    httpx.patch(f"{stack.base_url}/v1/audio/voices/shimmer", json={"enabled": False, "description": "Muted"})
    assert httpx.put(f"{stack.base_url}/v1/audio/voices/shimmer").json() == shipped
    # With a body, what it gives replaces what ships.
    quiet = httpx.put(f"{stack.base_url}/v1/audio/voices/shimmer", json={"enabled": False}).json()
    assert quiet == {**shipped, "enabled": False}
    assert httpx.put(f"{stack.base_url}/v1/audio/voices/shimmer", json={}).json() == shipped


def test_only_builtin_voices_are_restored(stack: Stack) -> None:
    name = new_name()
    assert upload(stack, name, wav_bytes()).status_code == 201
    assert voices(stack)[name]["builtin"] is False
    error = assert_error(httpx.put(f"{stack.base_url}/v1/audio/voices/{name}"), 404, "name")
    assert "alloy" in error["message"]
    assert httpx.delete(f"{stack.base_url}/v1/audio/voices/fable").status_code == 200
    try:
        assert upload(stack, "fable", wav_bytes()).status_code == 201
        assert voices(stack)["fable"]["builtin"] is False
        assert_error(httpx.put(f"{stack.base_url}/v1/audio/voices/fable"), 409, "name")
    finally:
        httpx.delete(f"{stack.base_url}/v1/audio/voices/fable")
        assert httpx.put(f"{stack.base_url}/v1/audio/voices/fable").status_code == 200


def test_voice_writes_do_not_hold_up_other_requests(stack: Stack) -> None:
    """An upload waiting for the voice store's lock (another API process writing) leaves the event loop free."""
    store = Path(stack.env["DATA_DIR"]) / "voices"
    store.mkdir(parents=True, exist_ok=True)
    with (store / ".voices.lock").open("a") as lock, ThreadPoolExecutor(1) as pool:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            pending = pool.submit(upload, stack, new_name(), wav_bytes())
            time.sleep(0.5)
            assert not pending.done(), "the upload should be waiting for the lock"
            started = time.monotonic()
            assert httpx.get(f"{stack.base_url}/v1/models", timeout=5).status_code == 200
            assert httpx.get(f"{stack.base_url}/v1/audio/voices", timeout=5).status_code == 200
            assert time.monotonic() - started < 2
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        assert pending.result(timeout=30).status_code == 201


def test_hand_edit_of_voices_json_takes_effect_without_restart(stack: Stack, registry_file: Path) -> None:
    (registry_file.parent / "hand-made.wav").write_bytes(wav_bytes())
    mapping = json.loads(registry_file.read_text())
    mapping["handmade"] = {"audio_file": "hand-made.wav", "description": "Edited by hand"}
    registry_file.write_text(json.dumps(mapping, indent=2))
    listed = voices(stack)["handmade"]
    assert listed == {
        "name": "handmade",
        "description": "Edited by hand",
        "enabled": True,
        "has_reference_audio": True,
        "language": None,
        "builtin": False,
    }
    assert_speaks(stack, "handmade")

    mapping["handmade"]["enabled"] = False
    registry_file.write_text(json.dumps(mapping, indent=2))
    assert_error(speak(stack, "handmade"), 400, "voice")

    del mapping["handmade"], mapping["echo"]
    registry_file.write_text(json.dumps(mapping))
    assert "handmade" not in voices(stack) and "echo" not in voices(stack)
    assert_error(speak(stack, "echo"), 400, "voice")


def test_a_broken_hand_edit_keeps_the_last_good_voices(stack: Stack, registry_file: Path) -> None:
    before = voices(stack)
    registry_file.write_text('{"alloy": {"audio_file": ')
    assert voices(stack) == before
    assert_speaks(stack, "alloy")
    registry_file.write_text(json.dumps({"alloy": {"audio_file": "../../etc/passwd"}}))
    assert voices(stack) == before


def test_openapi_document_and_docs(stack: Stack) -> None:
    response = httpx.get(f"{stack.base_url}/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in ("/v1/audio/speech", "/v1/models", "/v1/audio/voices", "/run", "/runsync", "/health"):
        assert path in paths
    for path in ("/v2/{endpoint_id}/run", "/v2/{endpoint_id}/status/{job_id}", "/v2/{endpoint_id}/purge-queue"):
        assert path in paths
    assert "post" in paths["/v1/audio/speech"] and "requestBody" in paths["/v1/audio/speech"]["post"]
    docs = httpx.get(f"{stack.base_url}/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
