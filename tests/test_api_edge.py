"""The edge of the API with real processes: auth, body limits, back-pressure, a missing broker or worker,
callers that go away and callers that wait too long."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
import runpod
from openai import OpenAI

from tasks.jobs import QUEUED_SET
from tests.conftest import Stack, redis_db_url, start_stack, stop_stack
from tests.support.api import assert_error
from tests.support.audio import wav_bytes
from tests.support.jobs import speech_text
from tests.support.processes import ManagedProcess, pool_children, start_api, start_worker, wait_for
from tests.support.s3 import free_port

pytestmark = pytest.mark.integration

KEYS = "k1,k2"
ADMIN_KEY = "boss"
BODY_LIMIT = 4096
SPEECH = {"model": "tts-1", "voice": "alloy", "input": "Hello at the edge."}
# Seconds of work for the espeak worker: many chunks, each stretched 4x and encoded as Opus.
SLOW_SPEECH = {"model": "tts-1", "voice": "alloy", "input": speech_text(20), "speed": 0.25, "response_format": "opus"}
SLOW_JOB = {"input": {"text": speech_text(20), "speed": 0.25}}


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API keys, a small body limit, a short wait for speech and room for one queued job, with a worker."""
    running = start_stack(
        tmp_path_factory.mktemp("strict"),
        redis_db_url(10),
        API_KEYS=KEYS,
        ADMIN_API_KEYS=ADMIN_KEY,
        MAX_BODY_BYTES=str(BODY_LIMIT),
        SYNC_WAIT_TIMEOUT_S="0.5",
        MAX_QUEUE_DEPTH="1",
    )
    yield running
    stop_stack(running)


@pytest.fixture(scope="module")
def workerless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, redis.Redis]]:
    """An API with no worker behind it, set to refuse waiting callers at once, and room for one queued job."""
    url = redis_db_url(11)
    client = redis.Redis.from_url(url)
    client.flushdb()
    port = free_port()
    env = {
        "REDIS_URL": url,
        "DATA_DIR": str(tmp_path_factory.mktemp("workerless") / "data"),
        "MAX_QUEUE_DEPTH": "1",
        "FAIL_FAST_WITHOUT_WORKER": "true",
    }
    api = start_api(env, tmp_path_factory.mktemp("workerless-logs"), port)
    yield f"http://127.0.0.1:{port}", client
    api.stop()
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def brokerless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API whose Redis is a closed port."""
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DATA_DIR": str(tmp_path_factory.mktemp("brokerless"))}
    port = free_port()
    api: ManagedProcess = start_api(env, tmp_path_factory.mktemp("brokerless-logs"), port)
    yield f"http://127.0.0.1:{port}"
    api.stop()


def status_of(base_url: str, job_id: str, **headers: str) -> str:
    response = httpx.get(f"{base_url}/status/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


# --- auth ---


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer anything"}, {"Authorization": "whatever"}], ids=["none", "bearer", "bare"]
)
def test_without_configured_keys_the_api_is_open(stack: Stack, headers: dict[str, str]) -> None:
    assert httpx.get(f"{stack.base_url}/v1/models", headers=headers).status_code == 200
    assert httpx.get(f"{stack.base_url}/health", headers=headers).status_code == 200
    response = httpx.post(f"{stack.base_url}/v1/audio/speech", json=SPEECH, headers=headers, timeout=60)
    assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"


PROTECTED = [
    ("POST", "/v1/audio/speech", SPEECH),
    ("GET", "/v1/models", None),
    ("GET", "/v1/audio/voices", None),
    ("POST", "/run", {"input": {"text": "Hello."}}),
    ("POST", "/runsync", {"input": {"text": "Hello."}}),
    ("POST", "/v2/some-endpoint/run", {"input": {"text": "Hello."}}),
    ("GET", "/status/some-id", None),
    ("GET", "/v2/some-endpoint/status/some-id", None),
    ("POST", "/cancel/some-id", None),
    ("POST", "/purge-queue", None),
    ("GET", "/health", None),
    ("GET", "/v2/some-endpoint/health", None),
]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", "wrong", "Bearer", "Bearer k1k2", "Basic azE6"], ids=repr
)
def test_missing_or_wrong_key_is_401(
    strict: Stack, method: str, path: str, body: object, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = httpx.request(method, f"{strict.base_url}{path}", json=body, headers=headers)
    error = assert_error(response, 401)
    assert error["type"] == "authentication_error"
    assert "k1" not in response.text and "k2" not in response.text


@pytest.mark.parametrize("authorization", ["Bearer k2", "bearer k1", "k1", "k2"])
def test_configured_keys_as_bearer_or_bare(strict: Stack, authorization: str) -> None:
    headers = {"Authorization": authorization}
    assert httpx.get(f"{strict.base_url}/v1/models", headers=headers).status_code == 200
    assert httpx.get(f"{strict.base_url}/health", headers=headers).status_code == 200
    assert_error(httpx.get(f"{strict.base_url}/status/nope", headers=headers), 404)


def test_openai_sdk_with_wrong_and_right_key(strict: Stack) -> None:
    with OpenAI(base_url=f"{strict.base_url}/v1", api_key="wrong", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
        with pytest.raises(openai.AuthenticationError):
            client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.")
    with OpenAI(base_url=f"{strict.base_url}/v1", api_key="k2", max_retries=0) as client:
        assert "tts-1" in [model.id for model in client.models.list().data]


def test_runpod_sdk_with_wrong_and_right_key(strict: Stack) -> None:
    runpod.endpoint_url_base = f"{strict.base_url}/v2"
    try:
        runpod.api_key = "wrong"
        with pytest.raises(RuntimeError, match="Unauthorized"):
            runpod.Endpoint("edge").health()
        runpod.api_key = "k1"
        health = runpod.Endpoint("edge").health()
        assert set(health) == {"jobs", "workers"}
    finally:
        runpod.api_key = None
        runpod.endpoint_url_base = "https://api.runpod.ai/v2"


def test_only_admin_keys_change_voices(strict: Stack) -> None:
    url = f"{strict.base_url}/v1/audio/voices"
    files = {"file": ("clip.wav", wav_bytes(0.5), "audio/wav")}
    admin, user = {"Authorization": f"Bearer {ADMIN_KEY}"}, {"Authorization": "Bearer k1"}
    for headers in (user, {"Authorization": "k2"}):
        error = assert_error(httpx.post(url, data={"name": "guarded"}, files=files, headers=headers), 403)
        assert (error["type"], error["code"]) == ("permission_error", "admin_key_required")
        assert_error(httpx.patch(f"{url}/alloy", json={"enabled": False}, headers=headers), 403)
        assert_error(httpx.delete(f"{url}/alloy", headers=headers), 403)
        assert_error(httpx.put(f"{url}/alloy", headers=headers), 403)
    assert_error(httpx.post(url, data={"name": "guarded"}, files=files), 401)
    assert "guarded" not in {voice["name"] for voice in httpx.get(url, headers=user).json()["data"]}
    response = httpx.post(url, data={"name": "guarded"}, files=files, headers=admin)
    assert response.status_code == 201, response.text
    assert httpx.patch(f"{url}/guarded", json={"description": "Set by an admin"}, headers=admin).status_code == 200
    assert httpx.delete(f"{url}/guarded", headers=admin).status_code == 200
    # An admin key is an accepted key everywhere else too.
    assert httpx.get(f"{strict.base_url}/v1/models", headers=admin).status_code == 200


# --- body size ---


def over_limit_body() -> bytes:
    return b'{"input": {"text": "' + b"a" * BODY_LIMIT + b'"}}'


def test_body_over_the_limit_with_content_length_is_413(strict: Stack) -> None:
    headers = {"Authorization": "k1", "content-type": "application/json"}
    response = httpx.post(f"{strict.base_url}/run", content=over_limit_body(), headers=headers)
    assert_error(response, 413)
    speech = {**SPEECH, "input": "a" * BODY_LIMIT}
    assert_error(httpx.post(f"{strict.base_url}/v1/audio/speech", json=speech, headers=headers), 413)


def test_chunked_body_over_the_limit_is_413(strict: Stack) -> None:
    def chunks(body: bytes) -> Iterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    headers = {"Authorization": "k1", "content-type": "application/json"}
    response = httpx.post(f"{strict.base_url}/run", content=chunks(over_limit_body()), headers=headers)
    assert "content-length" not in response.request.headers
    assert_error(response, 413)
    # Under the limit, the same way of sending reaches the route.
    small = b'{"input": {"text": "Hello in chunks."}}'
    response = httpx.post(f"{strict.base_url}/run", content=chunks(small), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "IN_QUEUE"


def test_auth_comes_before_the_body_limit(strict: Stack) -> None:
    response = httpx.post(f"{strict.base_url}/run", content=over_limit_body(), headers={"Authorization": "nope"})
    assert_error(response, 401)


# --- back-pressure, broker and worker ---


def test_fail_fast_without_worker_is_503_for_waiting_callers_and_a_full_queue_is_429(
    workerless: tuple[str, redis.Redis],
) -> None:
    base_url, client = workerless
    for path, body in (("/v1/audio/speech", SPEECH), ("/v2/e/runsync", {"input": {"text": "Hello."}})):
        response = httpx.post(f"{base_url}{path}", json=body)
        error = assert_error(response, 503, code="no_worker")
        assert error["type"] == "service_unavailable"
        assert int(response.headers["retry-after"]) > 0
    assert client.zcard(QUEUED_SET) == 0, "a refused caller leaves no job behind"
    # /run's caller does not wait, so its job is accepted without a worker: until the queue is full.
    first = httpx.post(f"{base_url}/run", json={"input": {"text": "Hello."}})
    assert first.status_code == 200 and first.json()["status"] == "IN_QUEUE"
    try:
        full = httpx.post(f"{base_url}/run", json={"input": {"text": "Hello."}})
        assert_error(full, 429, code="queue_full")
        assert int(full.headers["retry-after"]) > 0
    finally:
        assert httpx.post(f"{base_url}/purge-queue").json() == {"removed": 1, "status": "completed"}
    assert status_of(base_url, first.json()["id"]) == "CANCELLED"
    again = httpx.post(f"{base_url}/run", json={"input": {"text": "Hello."}})
    assert again.status_code == 200
    httpx.post(f"{base_url}/cancel/{again.json()['id']}")


def test_waiting_callers_are_served_by_a_worker_that_starts_after_them(tmp_path: Path) -> None:
    """Scaling from zero: with no worker alive, speech and /runsync wait in the queue (the default), and a streamed
    speech response sends its status line only once there is audio."""
    url = redis_db_url(15)
    client = redis.Redis.from_url(url)
    client.flushdb()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {"REDIS_URL": url, "DATA_DIR": str(tmp_path / "data"), "STORAGE_BACKEND": "local"}
    api = start_api(env, tmp_path, port)
    worker: ManagedProcess | None = None

    def speech() -> tuple[int, float, bytes]:
        body = {**SPEECH, "response_format": "wav"}
        with httpx.stream("POST", f"{base_url}/v1/audio/speech", json=body, timeout=120) as response:
            headers_at = time.monotonic()
            return response.status_code, headers_at, response.read()

    try:
        with ThreadPoolExecutor(2) as pool:
            spoken = pool.submit(speech)
            waited = pool.submit(
                httpx.post, f"{base_url}/runsync?wait=120000", json={"input": {"text": "Hello."}}, timeout=150
            )
            wait_for(lambda: client.zcard(QUEUED_SET) == 2, 15, "both jobs queued")
            time.sleep(1.0)  # a refusal would have come back by now
            assert not spoken.done() and not waited.done()
            worker_started_at = time.monotonic()
            worker = start_worker({**env, "PUBLIC_BASE_URL": base_url}, tmp_path)
            status, headers_at, audio = spoken.result(120)
            state = waited.result(150).json()
        assert status == 200, audio
        assert headers_at > worker_started_at, "the 200 went out before any worker existed"
        assert audio[:4] == b"RIFF" and len(audio) > 44 + 24000, "at least half a second of 24 kHz audio"
        assert state["status"] == "COMPLETED", state
        assert state["output"]["duration_sec"] > 0.2
    finally:
        if worker is not None:
            worker.stop()
        api.stop()
        client.flushdb()
        client.close()


def test_full_queue_is_429_for_speech_and_jobs(strict: Stack) -> None:
    headers = {"Authorization": "k1"}

    def idle() -> bool:
        jobs = httpx.get(f"{strict.base_url}/health", headers=headers).json()["jobs"]
        return bool(jobs["inQueue"] == 0 and jobs["inProgress"] == 0)

    wait_for(idle, 30, "no jobs queued or running")
    blocker = httpx.post(f"{strict.base_url}/run", json=SLOW_JOB, headers=headers).json()["id"]
    queued = None
    try:
        wait_for(lambda: status_of(strict.base_url, blocker, **headers) == "IN_PROGRESS", 30, "the blocker to start")
        queued = httpx.post(f"{strict.base_url}/run", json={"input": {"text": "Wait."}}, headers=headers).json()["id"]
        assert status_of(strict.base_url, queued, **headers) == "IN_QUEUE"
        for path, body in [
            ("/run", {"input": {"text": "Hello."}}),
            ("/v2/e/runsync", {"input": {"text": "Hello."}}),
            ("/v1/audio/speech", SPEECH),
        ]:
            full = httpx.post(f"{strict.base_url}{path}", json=body, headers=headers)
            error = assert_error(full, 429, code="queue_full")
            assert error["type"] == "rate_limit_error"
            assert int(full.headers["retry-after"]) > 0
    finally:
        for job_id in (queued, blocker):
            if job_id is not None:
                httpx.post(f"{strict.base_url}/cancel/{job_id}", headers=headers)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/run", {"input": {"text": "Hello."}}),
        ("POST", "/v2/e/runsync", {"input": {"text": "Hello."}}),
        ("POST", "/v1/audio/speech", SPEECH),
        ("GET", "/status/some-id", None),
        ("POST", "/cancel/some-id", None),
        ("POST", "/purge-queue", None),
        ("GET", "/health", None),
    ],
)
def test_broker_down_is_503_with_retry_after(brokerless: str, method: str, path: str, body: object) -> None:
    response = httpx.request(method, f"{brokerless}{path}", json=body, timeout=30)
    error = assert_error(response, 503, code="queue_unavailable")
    assert error["type"] == "service_unavailable"
    assert int(response.headers["retry-after"]) > 0
    assert "127.0.0.1" not in error["message"]


def test_bad_request_is_400_even_with_the_broker_down(brokerless: str) -> None:
    response = httpx.post(f"{brokerless}/v1/audio/speech", json={**SPEECH, "voice": "nobody"})
    assert assert_error(response, 400)["param"] == "voice"


# --- callers that go away or wait too long ---


def finish_one_job(base_url: str, **headers: str) -> None:
    """Run a short job to the end: the one worker has then dealt with every job queued before it."""
    response = httpx.post(f"{base_url}/runsync", json={"input": {"text": "Next."}}, headers=headers, timeout=60)
    assert response.json()["status"] == "COMPLETED", response.text


def progress_of(base_url: str, job_id: str, **headers: str) -> list[tuple[int, int]]:
    stream = httpx.get(f"{base_url}/stream/{job_id}", headers=headers).json()["stream"]
    pairs = [item["output"]["progress"].split("/") for item in stream if "progress" in item["output"]]
    return [(int(done), int(total)) for done, total in pairs]


@pytest.mark.parametrize("stream_format", ["audio", "sse"])
def test_client_that_disconnects_mid_stream_cancels_its_job(stack: Stack, stream_format: str) -> None:
    body = {**SLOW_SPEECH, "stream_format": stream_format}
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", f"{stack.base_url}/v1/audio/speech", json=body) as response,
    ):
        assert response.status_code == 200
        job_id = response.headers["x-job-id"]
        chunks = response.iter_bytes()
        assert next(chunks)
        assert status_of(stack.base_url, job_id) == "IN_PROGRESS"
    wait_for(lambda: status_of(stack.base_url, job_id) == "CANCELLED", 5, f"job {job_id} cancelled")
    finish_one_job(stack.base_url)
    # The worker stopped at a chunk boundary instead of making audio nobody will hear.
    progress = progress_of(stack.base_url, job_id)
    assert progress and progress[-1][0] < progress[-1][1]
    assert httpx.get(f"{stack.base_url}/status/{job_id}").json()["status"] == "CANCELLED"


def test_sse_stream_cut_short_ends_with_an_error_event_not_done(stack: Stack) -> None:
    body = {**SLOW_SPEECH, "stream_format": "sse"}
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", f"{stack.base_url}/v1/audio/speech", json=body) as response,
    ):
        assert response.status_code == 200
        job_id = response.headers["x-job-id"]
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert json.loads(first.removeprefix("data: "))["type"] == "speech.audio.delta"
        assert httpx.post(f"{stack.base_url}/cancel/{job_id}").status_code == 200
        types = [json.loads(line.removeprefix("data: "))["type"] for line in lines if line.startswith("data: {")]
    assert types[-1] == "error"
    assert "speech.audio.done" not in types


def test_speech_the_worker_cannot_serve_as_asked_is_400(stack: Stack) -> None:
    voices_file = Path(stack.env["DATA_DIR"]) / "voices" / "voices.json"
    voices_file.parent.mkdir(parents=True, exist_ok=True)
    voices_file.write_text(json.dumps({"fleeting": {"audio_file": "fleeting.wav"}}))
    blocker = httpx.post(f"{stack.base_url}/run", json=SLOW_JOB).json()["id"]
    try:
        wait_for(lambda: status_of(stack.base_url, blocker) == "IN_PROGRESS", 30, "the blocker to start")
        body = {"model": "tts-1", "voice": "fleeting", "input": "Hello."}
        with ThreadPoolExecutor(1) as pool:
            # Accepted while the voice exists; it is gone by the time a worker picks the job up.
            pending = pool.submit(httpx.post, f"{stack.base_url}/v1/audio/speech", json=body, timeout=60)
            wait_for(lambda: len(_queued(stack)) == 1, 10, "the speech job to be queued")
            voices_file.unlink()
            httpx.post(f"{stack.base_url}/cancel/{blocker}")
            response = pending.result()
    finally:
        httpx.post(f"{stack.base_url}/cancel/{blocker}")
        voices_file.unlink(missing_ok=True)
    error = assert_error(response, 400, code="synthesis_rejected")
    assert "fleeting" in error["message"] and "alloy" in error["message"]


def test_client_that_disconnects_before_any_audio_cancels_its_job(stack: Stack) -> None:
    # Keep the only worker busy, so the speech job waits in the queue while its caller gives up.
    blocker = httpx.post(f"{stack.base_url}/run", json=SLOW_JOB).json()["id"]
    try:
        wait_for(lambda: status_of(stack.base_url, blocker) == "IN_PROGRESS", 30, "the blocker to start")
        body = json.dumps({"model": "tts-1", "voice": "alloy", "input": "Nobody will hear this."}).encode()
        host, port = httpx.URL(stack.base_url).host, httpx.URL(stack.base_url).port
        with socket.create_connection((host, port)) as raw:
            raw.sendall(
                b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            wait_for(lambda: len(_queued(stack)) == 1, 10, "the speech job to be queued")
            [job_id] = _queued(stack)
        wait_for(lambda: status_of(stack.base_url, job_id) == "CANCELLED", 10, f"job {job_id} cancelled")
        assert status_of(stack.base_url, blocker) == "IN_PROGRESS"
    finally:
        httpx.post(f"{stack.base_url}/cancel/{blocker}")
    finish_one_job(stack.base_url)
    state = httpx.get(f"{stack.base_url}/status/{job_id}").json()
    assert state["status"] == "CANCELLED" and state["executionTime"] == 0


def _queued(stack: Stack) -> list[str]:
    queued: Any = stack.redis.zrange(QUEUED_SET, 0, -1)
    return [raw.decode() for raw in queued]


def test_speech_not_started_in_time_is_504_and_its_job_is_cancelled(strict: Stack) -> None:
    headers = {"Authorization": "Bearer k1"}
    # Keep the only worker busy, so the speech job cannot start within SYNC_WAIT_TIMEOUT_S.
    blocker = httpx.post(f"{strict.base_url}/run", json=SLOW_JOB, headers=headers).json()["id"]
    try:
        wait_for(lambda: status_of(strict.base_url, blocker, **headers) == "IN_PROGRESS", 30, "the blocker to start")
        with (
            OpenAI(base_url=f"{strict.base_url}/v1", api_key="k1", max_retries=0, timeout=30) as client,
            pytest.raises(openai.APIStatusError) as raised,
        ):
            client.audio.speech.create(model="tts-1", voice="alloy", input="Hello, in time?")
    finally:
        httpx.post(f"{strict.base_url}/cancel/{blocker}", headers=headers)
    error = raised.value
    assert (error.status_code, error.type, error.code) == (504, "timeout_error", "timeout")
    job_id = error.response.headers["x-job-id"]
    assert status_of(strict.base_url, job_id, **headers) == "CANCELLED"
    # Once the worker is free again it skips the cancelled job instead of running it.
    finish_one_job(strict.base_url, **headers)
    state = httpx.get(f"{strict.base_url}/status/{job_id}", headers=headers).json()
    assert state["status"] == "CANCELLED" and state["executionTime"] == 0 and state.get("output") is None


def test_callers_waiting_in_the_queue_past_the_redis_socket_timeout_get_their_result(stack: Stack) -> None:
    # redis-py 8 times socket reads out after 5 s by default, and the service's own socket timeout is 10 s: a caller
    # waiting longer than both for its job must still be served, not get a 503. Freezing the worker's pool child
    # keeps both jobs queued for exactly as long as the test wants, whatever this machine's speed.
    [child] = pool_children(stack.worker.process.pid)
    wait_s = stack.settings.redis_socket_timeout_s + 2
    os.kill(child, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(2) as pool:
            speech = pool.submit(httpx.post, f"{stack.base_url}/v1/audio/speech", json=SPEECH, timeout=60)
            runsync = pool.submit(
                httpx.post, f"{stack.base_url}/runsync", json={"input": {"text": "Still waiting."}}, timeout=60
            )
            time.sleep(wait_s)
            assert not speech.done() and not runsync.done()
            os.kill(child, signal.SIGCONT)
            speech_response, runsync_response = speech.result(), runsync.result()
    finally:
        os.kill(child, signal.SIGCONT)
    assert speech_response.status_code == 200, speech_response.text
    assert speech_response.headers["content-type"] == "audio/mpeg" and len(speech_response.content) > 1000
    assert runsync_response.status_code == 200, runsync_response.text
    state = runsync_response.json()
    assert state["status"] == "COMPLETED" and state["delayTime"] > (wait_s - 1) * 1000
