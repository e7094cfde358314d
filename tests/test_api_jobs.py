"""The Runpod-compatible job API driven by the official `runpod` SDK and plain HTTP, against real processes."""

from __future__ import annotations

import base64
import io
import os
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import redis
import runpod

from tasks.jobs import events_key, record_key
from tests.conftest import Stack, redis_db_url, start_stack, stop_stack
from tests.support.api import assert_error
from tests.support.jobs import speech_text
from tests.support.processes import start_api, wait_for
from tests.support.s3 import free_port

pytestmark = pytest.mark.integration

TEXT = "Hello from the job API. A second sentence follows the first."
OPENAI_INPUT = {"model": "tts-1", "input": TEXT, "voice": "alloy"}
# Seconds of work for the espeak worker: many chunks, each stretched 4x.
SLOW_INPUT = {"text": speech_text(20), "speed": 0.25}
ACTIVE = {"IN_QUEUE", "IN_PROGRESS"}
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
PREFIXES = ["", "/v2/any-endpoint-id"]


def decode(data: bytes) -> tuple[str, str, int, float]:
    """(container, codec, channels, seconds) of encoded audio, decoded for real."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return container.format.name, stream.codec_context.name, stream.channels, samples / stream.rate


def status_of(base_url: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/status/{job_id}")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


def wait_terminal(base_url: str, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    states: list[dict[str, Any]] = []

    def ended() -> bool:
        states.append(status_of(base_url, job_id))
        return states[-1]["status"] in TERMINAL

    wait_for(ended, timeout_s, f"job {job_id} to end")
    return states[-1]


def fetch_audio(stack: Stack, audio_url: str) -> httpx.Response:
    url = httpx.URL(audio_url)
    assert url.path.startswith("/files/") and url.params["signature"]
    assert str(url).startswith(stack.base_url), "links must point at the API that serves them"
    return httpx.get(url)


def write_wav(path: Path, seconds: float = 1.5, rate: int = 24000) -> None:
    frames = b"".join(
        int(8000 * ((n // 40) % 2 * 2 - 1)).to_bytes(2, "little", signed=True) for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(rate)
        clip.writeframes(frames)


@pytest.fixture
def sdk_base() -> Iterator[None]:
    """Point the runpod SDK at a base URL for one test, and put it back afterwards."""
    saved = runpod.api_key, runpod.endpoint_url_base
    yield
    runpod.api_key, runpod.endpoint_url_base = saved


def endpoint_for(base_url: str) -> runpod.Endpoint:
    runpod.api_key = "not-checked"
    runpod.endpoint_url_base = f"{base_url}/v2"
    return runpod.Endpoint("any-endpoint-id")


@pytest.fixture
def endpoint(stack: Stack, sdk_base: None) -> runpod.Endpoint:
    return endpoint_for(stack.base_url)


@pytest.fixture(scope="module")
def storeless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack without an object store: outputs carry the audio inline."""
    running = start_stack(tmp_path_factory.mktemp("storeless"), redis_db_url(10), STORAGE_BACKEND="none")
    yield running
    stop_stack(running)


@pytest.fixture(scope="module")
def workerless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API with no worker: jobs stay queued."""
    url = redis_db_url(11)
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = {"REDIS_URL": url, "DATA_DIR": str(tmp_path_factory.mktemp("workerless") / "data")}
    port = free_port()
    api = start_api(env, tmp_path_factory.mktemp("workerless-logs"), port)
    yield f"http://127.0.0.1:{port}"
    api.stop()
    client.flushdb()
    client.close()


# --- the runpod SDK ---


def assert_custom_output(stack: Stack, output: dict[str, Any]) -> None:
    assert output["status"] == "success"
    assert output["sample_rate"] == 24000
    assert 2.0 < output["duration_sec"] < 15.0
    assert "audio_base64" not in output
    audio = fetch_audio(stack, output["audio_url"])
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/opus"
    container, codec, channels, seconds = decode(audio.content)
    assert (container, codec, channels) == ("ogg", "opus", 1)
    assert abs(seconds - output["duration_sec"]) < 0.1


def test_sdk_run_sync_custom_request(stack: Stack, endpoint: runpod.Endpoint) -> None:
    output = endpoint.run_sync({"text": TEXT}, timeout=60)
    assert_custom_output(stack, output)


def test_sdk_run_then_status_and_output_custom_request(stack: Stack, endpoint: runpod.Endpoint) -> None:
    job = endpoint.run({"text": TEXT, "temperature": 0.5, "exaggeration": 0.7, "cfg_weight": 0.3})
    assert job.status() in ACTIVE | {"COMPLETED"}
    output = job.output(timeout=60)
    assert job.status() == "COMPLETED"
    assert_custom_output(stack, output)


def test_signed_audio_url_is_checked(stack: Stack, endpoint: runpod.Endpoint) -> None:
    url = httpx.URL(endpoint.run_sync({"text": "Signed."}, timeout=60)["audio_url"])
    assert fetch_audio(stack, str(url)).status_code == 200
    tampered = url.copy_set_param("signature", "0" * len(url.params["signature"]))
    assert_error(fetch_audio(stack, str(tampered)), 404, None)
    other_key = url.copy_with(path=url.path.replace(url.path.rsplit("/", 1)[1], "someone-else.ogg"))
    assert_error(fetch_audio(stack, str(other_key)), 404, None)


@pytest.mark.parametrize(
    ("fmt", "content_type", "container"), [("mp3", "audio/mpeg", "mp3"), ("wav", "audio/wav", "wav")]
)
def test_sdk_openai_shaped_request(
    stack: Stack, endpoint: runpod.Endpoint, fmt: str, content_type: str, container: str
) -> None:
    # This shape has its own `input` key, so the SDK would send it as the whole body: it must be wrapped.
    request = {"input": {**OPENAI_INPUT, "response_format": fmt} if fmt != "mp3" else OPENAI_INPUT}
    output = endpoint.run_sync(request, timeout=60)
    assert output["_content_type"] == content_type
    decoded_container, _, channels, seconds = decode(base64.b64decode(output["audio"]))
    assert (decoded_container, channels) == (container, 1)
    assert 2.0 < seconds < 15.0
    assert fetch_audio(stack, output["audio_url"]).content == base64.b64decode(output["audio"])
    job = endpoint.run(request)
    later = job.output(timeout=60)
    assert later["_content_type"] == content_type and decode(base64.b64decode(later["audio"]))[0] == container


def test_without_an_object_store_the_audio_is_inline(storeless: Stack, sdk_base: None) -> None:
    endpoint = endpoint_for(storeless.base_url)
    output = endpoint.run_sync({"text": TEXT}, timeout=60)
    assert output["status"] == "success" and output["sample_rate"] == 24000
    assert "audio_url" not in output
    container, codec, channels, seconds = decode(base64.b64decode(output["audio_base64"]))
    assert (container, codec, channels) == ("ogg", "opus", 1)
    assert abs(seconds - output["duration_sec"]) < 0.1
    speech = endpoint.run_sync({"input": OPENAI_INPUT}, timeout=60)
    assert "audio_url" not in speech and speech["_content_type"] == "audio/mpeg"
    assert decode(base64.b64decode(speech["audio"]))[0] == "mp3"


def test_sdk_health(endpoint: runpod.Endpoint) -> None:
    health = endpoint.health()
    assert set(health) == {"jobs", "workers"}
    assert set(health["jobs"]) == {"completed", "failed", "inProgress", "inQueue", "retried"}
    assert set(health["workers"]) == {"idle", "running"}
    assert all(
        isinstance(count, int) and count >= 0 for count in [*health["jobs"].values(), *health["workers"].values()]
    )
    assert health["workers"]["idle"] + health["workers"]["running"] == 1


def test_sdk_stream_yields_progress_then_the_output(endpoint: runpod.Endpoint) -> None:
    job = endpoint.run({"text": speech_text(5)})
    outputs = list(job.stream())
    progress = [item["progress"] for item in outputs if "progress" in item]
    total = int(progress[0].split("/")[1])
    assert total >= 2 and progress == [f"{done}/{total}" for done in range(total + 1)]
    assert outputs[-1]["status"] == "success"


def test_sdk_stream_of_a_streaming_job_yields_its_pcm_then_the_output(endpoint: runpod.Endpoint, stack: Stack) -> None:
    job = endpoint.run({"input": {"text": speech_text(3), "stream": True, "response_format": "wav"}})
    outputs = list(job.stream())
    pieces = [item for item in outputs if "audio_base64" in item and "status" not in item]
    assert len(pieces) >= 2 and all(p["sample_rate"] == 24000 and p["encoding"] == "pcm_s16le" for p in pieces)
    pcm = b"".join(base64.b64decode(p["audio_base64"]) for p in pieces)
    final = outputs[-1]
    assert final["status"] == "success" and "audio_url" in final
    # The streamed PCM is the job's audio: the stored WAV carries the same samples.
    stored = httpx.get(final["audio_url"]).content
    assert stored[44:] == pcm
    # Consumed as read: none of it is left waiting in Redis.
    assert int(stack.redis.hget(record_key(job.job_id), "audio_unread") or 0) == 0
    entries: Any = stack.redis.xrange(events_key(job.job_id))
    assert not [fields for _, fields in entries if fields[b"type"] == b"audio"]


# --- plain HTTP ---


@pytest.mark.parametrize("prefix", PREFIXES)
def test_run_and_status_at_both_mounts(stack: Stack, prefix: str) -> None:
    response = httpx.post(f"{stack.base_url}{prefix}/run", json={"input": {"text": TEXT}})
    assert response.status_code == 200
    accepted = response.json()
    assert accepted["status"] == "IN_QUEUE" and accepted["id"]
    state = wait_terminal(f"{stack.base_url}{prefix}", accepted["id"])
    assert state["status"] == "COMPLETED" and state["id"] == accepted["id"]
    assert isinstance(state["delayTime"], int) and state["delayTime"] >= 0
    assert isinstance(state["executionTime"], int) and state["executionTime"] > 0
    assert state["output"]["status"] == "success"


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("job_id", ["no-such-job", "00000000-0000-0000-0000-000000000000", "x" * 300])
def test_unknown_job_is_404(stack: Stack, prefix: str, job_id: str) -> None:
    base = f"{stack.base_url}{prefix}"
    for method, route in [("GET", "status"), ("POST", "cancel"), ("POST", "retry"), ("GET", "stream")]:
        error = assert_error(httpx.request(method, f"{base}/{route}/{job_id}"), 404, None)
        assert error["type"] == "not_found_error"


def test_runsync_that_finishes_in_time_is_completed(stack: Stack) -> None:
    response = httpx.post(f"{stack.base_url}/runsync", json={"input": {"text": TEXT}}, timeout=60)
    state = response.json()
    assert state["status"] == "COMPLETED" and state["output"]["status"] == "success"
    assert state["executionTime"] > 0


def test_runsync_wait_returns_before_a_long_job_ends(stack: Stack) -> None:
    response = httpx.post(f"{stack.base_url}/v2/e/runsync?wait=1000", json={"input": SLOW_INPUT}, timeout=30)
    assert response.status_code == 200
    state = response.json()
    try:
        assert state["status"] in ACTIVE
        assert not state.get("output") or "progress" in state["output"]
    finally:
        httpx.post(f"{stack.base_url}/cancel/{state['id']}")


def test_runsync_wait_without_a_worker_is_in_queue(workerless: str) -> None:
    state = httpx.post(f"{workerless}/runsync?wait=1000", json={"input": {"text": TEXT}}, timeout=30).json()
    assert state["status"] == "IN_QUEUE"
    httpx.post(f"{workerless}/cancel/{state['id']}")


def test_cancel_a_running_job(stack: Stack, sdk_base: None) -> None:
    job = endpoint_for(stack.base_url).run(SLOW_INPUT)
    wait_for(lambda: status_of(stack.base_url, job.job_id)["status"] == "IN_PROGRESS", 30, "the job to start")
    assert job.cancel() == {"id": job.job_id, "status": "CANCELLED"}
    assert status_of(stack.base_url, job.job_id)["status"] == "CANCELLED"
    again = assert_error(httpx.post(f"{stack.base_url}/cancel/{job.job_id}"), 409, None, code="job_not_active")
    assert "CANCELLED" in again["message"]
    # A cancelled job cannot be retried either.
    assert_error(httpx.post(f"{stack.base_url}/retry/{job.job_id}"), 409, None)
    # The worker moves on: the next job completes, and the cancelled one never does.
    follow_up = httpx.post(f"{stack.base_url}/runsync", json={"input": {"text": "Next."}}, timeout=60).json()
    assert follow_up["status"] == "COMPLETED"
    final = status_of(stack.base_url, job.job_id)
    assert final["status"] == "CANCELLED" and not final.get("output")


def test_cancel_a_queued_job_and_it_never_runs(workerless: str) -> None:
    job_id = httpx.post(f"{workerless}/run", json={"input": {"text": TEXT}}).json()["id"]
    assert httpx.post(f"{workerless}/v2/x/cancel/{job_id}").json() == {"id": job_id, "status": "CANCELLED"}
    state = status_of(workerless, job_id)
    assert state["status"] == "CANCELLED" and state["executionTime"] == 0


def test_retry_only_failed_jobs(stack: Stack) -> None:
    done = httpx.post(f"{stack.base_url}/runsync", json={"input": {"text": TEXT}}, timeout=60).json()
    assert done["status"] == "COMPLETED"
    error = assert_error(httpx.post(f"{stack.base_url}/retry/{done['id']}"), 409, None, code="job_not_retryable")
    assert "COMPLETED" in error["message"]
    # A reference clip that is there when the job is submitted and gone when it runs: the job fails with the reason.
    clip = Path(stack.env["DATA_DIR"]) / "voices" / "fleeting.wav"
    clip.parent.mkdir(parents=True, exist_ok=True)
    write_wav(clip)
    blocker = httpx.post(f"{stack.base_url}/run", json={"input": SLOW_INPUT}).json()["id"]
    wait_for(lambda: status_of(stack.base_url, blocker)["status"] == "IN_PROGRESS", 30, "the blocker to start")
    job_id = httpx.post(f"{stack.base_url}/run", json={"input": {"text": TEXT, "audio_prompt": "fleeting.wav"}}).json()
    clip.unlink()
    httpx.post(f"{stack.base_url}/cancel/{blocker}")
    failed = wait_terminal(stack.base_url, job_id["id"])
    assert failed["status"] == "FAILED"
    assert "'fleeting.wav'" in failed["error"] and not failed.get("output")
    retried = httpx.post(f"{stack.base_url}/v2/e/retry/{failed['id']}")
    assert retried.status_code == 200
    assert retried.json() == {"id": failed["id"], "status": "IN_QUEUE"}
    again = wait_terminal(stack.base_url, failed["id"])
    assert again["status"] == "FAILED" and again["error"] == failed["error"]


def test_stream_returns_progress_then_output_and_is_consumed_as_read(stack: Stack) -> None:
    job_id = httpx.post(f"{stack.base_url}/run", json={"input": {"text": speech_text(5)}}).json()["id"]
    assert wait_terminal(stack.base_url, job_id)["status"] == "COMPLETED"
    first = httpx.get(f"{stack.base_url}/stream/{job_id}").json()
    assert first["status"] == "COMPLETED"
    outputs = [item["output"] for item in first["stream"]]
    progress = [item["progress"] for item in outputs[:-1]]
    total = int(progress[0].split("/")[1])
    assert total >= 2 and progress == [f"{done}/{total}" for done in range(total + 1)]
    assert outputs[-1]["status"] == "success" and outputs[-1]["audio_url"]
    second = httpx.get(f"{stack.base_url}/v2/e/stream/{job_id}").json()
    assert second == {"status": "COMPLETED", "stream": []}


def test_purge_queue_cancels_queued_jobs(workerless: str, sdk_base: None) -> None:
    ids = [httpx.post(f"{workerless}/run", json={"input": {"text": TEXT}}).json()["id"] for _ in range(3)]
    assert httpx.get(f"{workerless}/health").json()["jobs"]["inQueue"] == 3
    assert httpx.post(f"{workerless}/purge-queue").json() == {"removed": 3, "status": "completed"}
    assert all(status_of(workerless, job_id)["status"] == "CANCELLED" for job_id in ids)
    health = httpx.get(f"{workerless}/v2/e/health").json()
    assert health["jobs"]["inQueue"] == 0 and health["workers"] == {"idle": 0, "running": 0}
    httpx.post(f"{workerless}/run", json={"input": {"text": TEXT}})
    assert endpoint_for(workerless).purge_queue() == {"removed": 1, "status": "completed"}
    assert endpoint_for(workerless).purge_queue() == {"removed": 0, "status": "completed"}


# --- bad requests ---

BAD_BODIES: list[tuple[object, str | None]] = [
    ({}, "input"),
    ({"input": 5}, "input"),
    ({"input": "Hello."}, "input"),
    ({"input": ["Hello."]}, "input"),
    ({"input": None}, "input"),
    ({"input": {}}, "input.text"),
    ({"input": {"text": ""}}, "input.text"),
    ({"input": {"text": 5}}, "input.text"),
    ({"input": {"text": "x" * 4097}}, "input.text"),
    ({"input": {"text": "...!?"}}, "input.text"),
    ({"input": {"text": " \u0000\t"}}, "input.text"),
    ({"input": {"text": "Hi.", "language": "zz"}}, "input.language"),
    # Types mean what the OpenAPI document says: no strings for numbers, no numbers for booleans.
    ({"input": {"text": "Hi.", "temperature": "0.5"}}, "input.temperature"),
    ({"input": {"text": "Hi.", "top_k": 5.5}}, "input.top_k"),
    ({"input": {"text": "Hi.", "norm_loudness": 0}}, "input.norm_loudness"),
    ({"input": {"text": "Hi."}, "policy": {"lowPriority": 1}}, "policy"),
    ({"input": {"text": "Hi."}, "webhook": "ftp://example.com/hook"}, "webhook"),
    ({"input": {"text": "Hi."}, "webhook": "example.com/hook"}, "webhook"),
    ({"input": {"text": "Hi.", "language": "xx-fr"}}, "input.language"),
    ({"input": {"text": "Hi.", "temperature": -1}}, "input.temperature"),
    ({"input": {"text": "Hi.", "top_p": 2}}, "input.top_p"),
    ({"input": {"text": "Hi.", "top_k": 0}}, "input.top_k"),
    ({"input": {"text": "Hi.", "repetition_penalty": 0.5}}, "input.repetition_penalty"),
    ({"input": {"text": "Hi.", "response_format": "ogg"}}, "input.response_format"),
    ({"input": {**OPENAI_INPUT, "voice": "nobody"}}, "input.voice"),
    ({"input": {**OPENAI_INPUT, "model": "gpt-9-tts"}}, "input.model"),
    ({"input": {**OPENAI_INPUT, "speed": 9}}, "input.speed"),
    ({"input": {**OPENAI_INPUT, "input": ""}}, "input.input"),
    ({"input": {**OPENAI_INPUT, "surprise": True}}, "input.surprise"),
    ({"input": {"text": "Hi."}, "policy": {"executionTimeout": 5}}, "policy"),
]


@pytest.mark.parametrize("path", ["/run", "/runsync", "/v2/any-endpoint-id/run"])
@pytest.mark.parametrize(("body", "param"), BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_malformed_requests_are_400(stack: Stack, path: str, body: object, param: str | None) -> None:
    assert_error(httpx.post(f"{stack.base_url}{path}", json=body), 400, param)


def test_an_integer_may_be_written_as_a_whole_float_as_json_schema_allows(stack: Stack) -> None:
    body = {"input": {"text": "Hi.", "top_k": 50.0}, "policy": {"ttl": 60000.0}}
    assert httpx.post(f"{stack.base_url}/run", json=body).status_code == 200


def test_language_is_checked_at_submit_by_its_primary_subtag(stack: Stack) -> None:
    for language in ("pt-BR", "PT_br", "fr"):
        state = httpx.post(
            f"{stack.base_url}/runsync", json={"input": {"text": "Bom dia.", "language": language}}, timeout=60
        ).json()
        assert state["status"] == "COMPLETED", state
    error = assert_error(httpx.post(f"{stack.base_url}/run", json={"input": {"text": "Hi.", "language": "zz-ZZ"}}), 400)
    assert (error["param"], error["code"]) == ("input.language", "unsupported_language")
    assert "'zz-ZZ'" in error["message"] and "pt" in error["message"]


@pytest.mark.parametrize("content", [b"", b"{", b"input=1", b"[]"])
def test_body_that_is_not_a_json_object_is_400(stack: Stack, content: bytes) -> None:
    response = httpx.post(f"{stack.base_url}/run", content=content, headers={"content-type": "application/json"})
    assert_error(response, 400, None)


def test_runsync_wait_out_of_range_is_400(stack: Stack) -> None:
    for wait in ("5", "99999999", "soon"):
        response = httpx.post(f"{stack.base_url}/runsync?wait={wait}", json={"input": {"text": "Hi."}})
        assert_error(response, 400, "wait")


# --- audio_prompt stays inside the voice store ---


@pytest.fixture(scope="module")
def outside_secret(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A readable file outside the voice store, and a symlink to it from inside the store."""
    secret = tmp_path_factory.mktemp("outside") / "secret.wav"
    write_wav(secret)
    store = Path(stack.env["DATA_DIR"]) / "voices"
    store.mkdir(parents=True, exist_ok=True)
    (store / "escape.wav").symlink_to(secret)
    (store / "escape-dir").symlink_to(secret.parent, target_is_directory=True)
    return secret


@pytest.mark.parametrize(
    "audio_prompt",
    [
        "../x.wav",
        "../../../../etc/passwd",
        "/etc/passwd",
        "subdir/../../x.wav",
        "..\\x.wav",
        "./alloy.wav",
        ".hidden.wav",
        "voices.json",
        "nul\x00.wav",
        "escape.wav",
        "escape-dir/secret.wav",
        "no-such-file.wav",
        "",
    ],
)
def test_audio_prompt_outside_the_voice_store_is_400(stack: Stack, outside_secret: Path, audio_prompt: str) -> None:
    for path in ("/run", "/runsync"):
        response = httpx.post(f"{stack.base_url}{path}", json={"input": {"text": "Hi.", "audio_prompt": audio_prompt}})
        error = assert_error(response, 400, "input.audio_prompt")
        assert str(outside_secret.parent) not in error["message"]
        assert stack.env["DATA_DIR"] not in error["message"]


def test_audio_prompt_naming_a_file_in_the_store_works(stack: Stack, outside_secret: Path) -> None:
    store = Path(stack.env["DATA_DIR"]) / "voices"
    write_wav(store / "guest.wav")
    os.makedirs(store / "guests", exist_ok=True)
    write_wav(store / "guests" / "two.wav")
    for prompt in ("guest.wav", "guests/two.wav"):
        body = {"input": {"text": TEXT, "audio_prompt": prompt}}
        state = httpx.post(f"{stack.base_url}/runsync", json=body, timeout=60).json()
        assert state["status"] == "COMPLETED", state
        assert state["output"]["status"] == "success"
