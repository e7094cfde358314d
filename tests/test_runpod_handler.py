"""The Runpod serverless worker on the espeak engine, as Runpod runs it: under the runpod SDK's local API
(`--rp_serve_api`) with results delivered to S3, and under the SDK's production worker loop (a stand-in for
Runpod's job queue), which is where a yielded error becomes FAILED and `return_aggregate_stream` applies."""

from __future__ import annotations

import base64
import io
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.support.audio import decoded_seconds
from tests.support.processes import start_process, wait_for
from tests.support.runpod import HANDLER_MODULE, FakeRunpodQueue, LocalRunpod, start_local_runpod
from tests.support.s3 import BUCKET, MotoS3, running_moto_s3
from tests.test_infra import REPO, import_in_image

pytestmark = pytest.mark.integration

RATE = 24000


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    with running_moto_s3() as server:
        yield server


@pytest.fixture(scope="module")
def runpod_local(s3: MotoS3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRunpod]:
    tmp = tmp_path_factory.mktemp("runpod-espeak")
    env = {"TTS_ENGINE": "espeak", "DATA_DIR": str(tmp / "data"), "LOG_LEVEL": "INFO", **s3.env()}
    server = start_local_runpod(env, tmp)
    yield server
    server.stop()


def test_custom_request_is_uploaded_to_s3(runpod_local: LocalRunpod, s3: MotoS3) -> None:
    result = runpod_local.runsync({"text": "Hello from the Runpod worker."})
    assert result["status"] == "COMPLETED", result
    [output] = result["output"]  # a generator handler's output is what it yielded: here the job's output alone
    assert set(output) == {"status", "sample_rate", "duration_sec", "audio_url"}
    assert output["status"] == "success" and output["sample_rate"] == RATE
    key = f"tts/{result['id']}.ogg"
    uploaded = s3.keys()
    assert key in uploaded and f"/{BUCKET}/{key}" in output["audio_url"]
    audio = httpx.get(output["audio_url"], timeout=10)
    assert audio.status_code == 200 and audio.content.startswith(b"OggS")
    assert decoded_seconds(audio.content) == pytest.approx(output["duration_sec"], abs=0.03)
    assert output["duration_sec"] > 1.0


def test_openai_request_returns_base64_audio_and_its_content_type(runpod_local: LocalRunpod, s3: MotoS3) -> None:
    job_input = {"model": "tts-1", "voice": "alloy", "input": "Speech in the OpenAI shape.", "response_format": "wav"}
    result = runpod_local.runsync(job_input)
    assert result["status"] == "COMPLETED", result
    [output] = result["output"]
    assert output["_content_type"] == "audio/wav"
    with wave.open(io.BytesIO(base64.b64decode(output["audio"]))) as clip:
        assert clip.getframerate() == RATE and clip.getsampwidth() == 2 and clip.getnchannels() == 1
        samples = len(clip.readframes(10 * RATE)) // 2
    assert samples / RATE == pytest.approx(output["duration_sec"], abs=0.002)
    # With an object store the OpenAI shape also carries the upload's URL, as `/run` does here.
    assert httpx.get(output["audio_url"], timeout=10).content == base64.b64decode(output["audio"])


def test_stream_yields_pcm_pieces_then_the_output(runpod_local: LocalRunpod) -> None:
    items = runpod_local.streamed({"text": "First a sentence. Then another one, streamed.", "stream": True})
    *pieces, output = items
    assert output["status"] == "success" and "audio_url" in output
    assert len(pieces) >= 3
    assert all(set(piece) == {"audio_base64", "sample_rate", "encoding"} for piece in pieces)
    assert all(piece["sample_rate"] == RATE and piece["encoding"] == "pcm_s16le" for piece in pieces)
    lengths = [len(base64.b64decode(piece["audio_base64"])) // 2 for piece in pieces]
    assert max(lengths) <= RATE // 2, "pieces of at most half a second"
    assert sum(lengths) / RATE == pytest.approx(output["duration_sec"], abs=0.001), "every sample streamed"


BAD_INPUTS = {
    "empty text": {"text": ""},
    "text over the limit": {"text": "word " * 1000},
    "nothing to speak": {"text": "?!..."},
    "unknown voice": {"model": "tts-1", "voice": "nobody", "input": "Hi."},
    "unknown model": {"model": "whisper-1", "voice": "alloy", "input": "Hi."},
    "unknown OpenAI field": {"model": "tts-1", "voice": "alloy", "input": "Hi.", "pitch": 2},
    "temperature out of range": {"text": "Hi.", "temperature": 0},
    "language not spoken": {"text": "Hi.", "language": "zz-ZZ"},
    "clip outside the voice store": {"text": "Hi.", "audio_prompt": "../secret.wav"},
}


@pytest.mark.parametrize("job_input", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_fails_with_the_message_our_api_gives(
    runpod_local: LocalRunpod, stack: Stack, job_input: dict[str, Any]
) -> None:
    refused = httpx.post(f"{stack.base_url}/run", json={"input": job_input}, timeout=30)
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    # The local API reports a generator's items as they are; Runpod itself ends such a job FAILED (next test).
    assert runpod_local.runsync(job_input)["output"] == [{"error": message}]


def test_runpod_worker_loop_streams_aggregates_and_fails_bad_input(tmp_path: Path, stack: Stack) -> None:
    jobs: list[dict[str, Any]] = [
        {"id": "streamed", "input": {"text": "Streamed through the worker loop.", "stream": True}},
        {"id": "openai", "input": {"model": "tts-1", "voice": "alloy", "input": "Plain speech."}},
        {"id": "not-an-object", "input": "just some text"},
    ]
    queue = FakeRunpodQueue(jobs)
    queue.start()
    env = {
        "TTS_ENGINE": "espeak",
        "DATA_DIR": str(tmp_path / "data"),
        "STORAGE_BACKEND": "none",
        "RUNPOD_CONCURRENCY": "2",
        **queue.env(),
    }
    worker = start_process([sys.executable, "-m", HANDLER_MODULE], env, tmp_path / "runpod-worker.log")
    try:
        wait_for(lambda: len(queue.done) == len(jobs) or worker.process.poll() is not None, 120, "every job done")
        assert worker.process.poll() is None, worker.log()
    finally:
        assert worker.stop() == 0, worker.log()
        queue.stop()

    assert queue.batch_sizes[0] == 2, "Runpod is asked for as many jobs as RUNPOD_CONCURRENCY"
    streamed = queue.done["streamed"]
    assert "error" not in streamed
    # return_aggregate_stream: the job's output is everything it streamed, the final output last.
    assert streamed["output"] == [item["output"] for item in queue.streamed["streamed"]]
    *pieces, output = streamed["output"]
    assert len(pieces) >= 2 and all(piece["encoding"] == "pcm_s16le" for piece in pieces)
    assert output["status"] == "success" and decoded_seconds(base64.b64decode(output["audio_base64"])) > 1.0

    [speech] = queue.done["openai"]["output"]
    assert speech["_content_type"] == "audio/mpeg" and decoded_seconds(base64.b64decode(speech["audio"])) > 0.3

    refused = httpx.post(f"{stack.base_url}/run", json={"input": "just some text"}, timeout=30)
    assert refused.status_code == 400
    # A job result with `error` is FAILED at Runpod, with this text.
    assert queue.done["not-an-object"] == {"error": refused.json()["error"]["message"]}


def test_espeak_worker_takes_as_many_jobs_as_its_engine_batches(runpod_local: LocalRunpod) -> None:
    assert "Runpod concurrency 1 (engine batch 1)" in runpod_local.process.log()


def test_gpu_image_can_run_the_handler(tmp_path: Path) -> None:
    """The module imports from exactly the files Dockerfile.gpu copies, and the image installs the SDK."""
    requirements = (REPO / "requirements/gpu.txt").read_text()
    assert any(line.startswith("runpod==") for line in requirements.splitlines())
    result = import_in_image("Dockerfile.gpu", [HANDLER_MODULE], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
