"""The Runpod serverless worker on ChatterBox Turbo for real: the runpod SDK's local API serving the handler, whose
engine process loads a random-weight checkpoint (bench/checkpoint.py) and runs the library's code. One server for
the module, short texts."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import Checkpoints
from tests.support.audio import decoded_seconds, wav_bytes
from tests.support.runpod import LocalRunpod, start_local_runpod

pytestmark = pytest.mark.integration

RATE = 24000
MAX_BATCH = 4


@pytest.fixture(scope="module")
def turbo_runpod(checkpoints: Checkpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRunpod]:
    tmp = tmp_path_factory.mktemp("runpod-turbo")
    voices = tmp / "voices"
    voices.mkdir()
    (voices / "short.wav").write_bytes(wav_bytes(seconds=2.0))  # Turbo needs more than 5 s
    env = {
        "TTS_ENGINE": "chatterbox",
        "CHATTERBOX_VARIANT": "turbo",
        "CHATTERBOX_CHECKPOINT_DIR": str(checkpoints("turbo")),
        "CHATTERBOX_DEVICE": "cpu",
        "CHATTERBOX_WATERMARK": "false",
        "ENGINE_MAX_BATCH": str(MAX_BATCH),
        "ENGINE_MAX_SPEECH_TOKENS": "200",
        "ENGINE_THREADS": "1",
        "STREAM_TOKENS": "5",
        "STORAGE_BACKEND": "none",
        "DATA_DIR": str(tmp / "data"),
        "VOICES_DIR": str(voices),
        "LOG_LEVEL": "INFO",
    }
    server = start_local_runpod(env, tmp)
    yield server
    server.stop()


def test_turbo_worker_takes_as_many_jobs_as_its_engine_batches(turbo_runpod: LocalRunpod) -> None:
    assert f"Runpod concurrency {MAX_BATCH} (engine batch {MAX_BATCH})" in turbo_runpod.process.log()


def test_stream_yields_pieces_of_a_chunk_then_the_output(turbo_runpod: LocalRunpod) -> None:
    # Sampled hot, the random model seldom says its stop token, so the chunk runs long enough to stream.
    body = {"text": "Streaming from Turbo on Runpod.", "stream": True, "temperature": 5.0}
    # A sampled chunk may still end within its first tokens: ask again (up to three times) for one long enough.
    for _ in range(3):
        *pieces, output = turbo_runpod.streamed(body)
        if output.get("duration_sec", 0) >= 2.0:
            break
    assert output["status"] == "success" and output["sample_rate"] == RATE
    assert all(piece["encoding"] == "pcm_s16le" and piece["sample_rate"] == RATE for piece in pieces)
    lengths = [len(base64.b64decode(piece["audio_base64"])) // 2 for piece in pieces]
    # The worker cuts audio into half-second slices: a chunk voiced whole gives full ones, then two short ones (its
    # remainder, and the joiner's held-back tail); each of the engine's pieces ends in a short slice of its own.
    short = [length for length in lengths if length < RATE // 2]
    assert len(short) >= 3, f"the chunk came whole, not in pieces: {lengths}"
    samples = sum(lengths)
    assert samples / RATE == pytest.approx(output["duration_sec"], abs=0.001), "every sample streamed"
    assert decoded_seconds(base64.b64decode(output["audio_base64"])) == pytest.approx(output["duration_sec"], abs=0.03)


def test_both_shapes_at_once_share_the_engine(turbo_runpod: LocalRunpod) -> None:
    openai_input = {"model": "tts-1", "voice": "alloy", "input": "The OpenAI shape.", "response_format": "mp3"}
    custom_input = {"text": "The custom shape.", "response_format": "wav"}
    with ThreadPoolExecutor(2) as pool:
        openai_job, custom_job = pool.map(turbo_runpod.runsync, [openai_input, custom_input])
    assert openai_job["status"] == custom_job["status"] == "COMPLETED"
    [speech] = openai_job["output"]
    assert speech["_content_type"] == "audio/mpeg"
    assert decoded_seconds(base64.b64decode(speech["audio"])) == pytest.approx(speech["duration_sec"], abs=0.08)
    [custom] = custom_job["output"]
    assert set(custom) == {"status", "sample_rate", "duration_sec", "audio_base64"}
    assert decoded_seconds(base64.b64decode(custom["audio_base64"])) == pytest.approx(custom["duration_sec"], abs=0.01)
    assert min(speech["duration_sec"], custom["duration_sec"]) > 0


def test_bad_inputs_fail_with_their_reason(turbo_runpod: LocalRunpod) -> None:
    [unknown] = turbo_runpod.runsync({"model": "tts-1", "voice": "nobody", "input": "Hi there."})["output"]
    assert unknown["error"].startswith("Voice 'nobody' is not available. Available voices: alloy, ")
    # Found only by the engine, as a job of the API finds it: its message, not an internal error.
    [short] = turbo_runpod.runsync({"text": "Hi there.", "audio_prompt": "short.wav"})["output"]
    too_short = "chatterbox-turbo needs a reference voice clip longer than 5 seconds; this one lasts 2.00 s"
    assert short == {"error": too_short}
