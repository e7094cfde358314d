"""The whole service on ChatterBox Turbo for real: API, Redis, a worker whose engine process loads a random-weight
checkpoint (bench/checkpoint.py) and runs the library's code, its pool children streaming chunks to it."""

from __future__ import annotations

import base64
import os
import signal
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from openai import OpenAI

from tests.conftest import Checkpoints, Stack, redis_db_url, start_stack, stop_stack
from tests.support.audio import decoded_seconds
from tests.support.processes import engine_process, pool_children

pytestmark = pytest.mark.integration

SENTENCE = "Hello from ChatterBox Turbo, running for real on random weights."
MAX_STREAMED_JOBS = 5


@pytest.fixture(scope="module")
def turbo_stack(checkpoints: Checkpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("turbo-stack"),
        redis_db_url(14),
        TTS_ENGINE="chatterbox",
        CHATTERBOX_VARIANT="turbo",
        CHATTERBOX_CHECKPOINT_DIR=str(checkpoints("turbo")),
        CHATTERBOX_DEVICE="cpu",
        CHATTERBOX_WATERMARK="false",
        ENGINE_MAX_BATCH="4",
        ENGINE_MAX_SPEECH_TOKENS="200",
        ENGINE_THREADS="2",
        STREAM_TOKENS="5",
        WORKER_CONCURRENCY="2",
    )
    yield running
    stop_stack(running)


def test_speech_streams_in_an_encoded_format(turbo_stack: Stack) -> None:
    with (
        OpenAI(base_url=f"{turbo_stack.base_url}/v1", api_key="x", max_retries=0, timeout=300) as client,
        client.audio.speech.with_streaming_response.create(
            model="chatterbox-turbo", voice="alloy", input=SENTENCE, response_format="mp3"
        ) as response,
    ):
        assert response.headers["content-type"] == "audio/mpeg"
        audio = b"".join(response.iter_bytes())
    assert decoded_seconds(audio) > 0.1


def test_concurrent_jobs_are_served_together_and_unwatermarked_when_asked(turbo_stack: Stack) -> None:
    import perth

    body = {"model": "tts-1", "voice": "alloy", "input": SENTENCE, "response_format": "wav"}
    with ThreadPoolExecutor(3) as pool:
        replies = list(
            pool.map(lambda _: httpx.post(f"{turbo_stack.base_url}/v1/audio/speech", json=body, timeout=300), range(3))
        )
    for reply in replies:
        assert reply.status_code == 200, reply.text
        samples = np.frombuffer(reply.content[44:], dtype="<i2").astype(np.float32) / 32768
        assert len(samples) > 0.1 * 24000
        assert perth.PerthImplicitWatermarker().get_watermark(samples, sample_rate=24000) < 0.5
    assert engine_process(turbo_stack.worker.process.pid) is not None


def test_runsync_that_waits_in_the_queue_past_five_seconds_completes(turbo_stack: Stack) -> None:
    children = pool_children(turbo_stack.worker.process.pid)
    for child in children:
        os.kill(child, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(
                httpx.post, f"{turbo_stack.base_url}/runsync", json={"input": {"text": SENTENCE}}, timeout=300
            )
            time.sleep(7)
            assert not waiting.done()
            for child in children:
                os.kill(child, signal.SIGCONT)
            reply = waiting.result()
    finally:
        for child in children:
            os.kill(child, signal.SIGCONT)
    assert reply.status_code == 200, reply.text
    state = reply.json()
    assert state["status"] == "COMPLETED" and state["delayTime"] > 5000, state
    assert state["output"]["sample_rate"] == 24000 and state["output"]["duration_sec"] > 0.1


def _streamed_job(stack: Stack, body: Mapping[str, object]) -> tuple[list[list[dict[str, object]]], bytes]:
    """Every poll of a streamed job's /stream until it succeeds, and the pcm of its audio items."""
    job_id = httpx.post(f"{stack.base_url}/run", json=body).json()["id"]
    polls: list[list[dict[str, object]]] = []
    while not polls or not polls[-1] or polls[-1][-1].get("status") != "success":
        reply = httpx.get(f"{stack.base_url}/stream/{job_id}", timeout=30).json()
        polls.append([chunk["output"] for chunk in reply["stream"]])
        if reply["status"] in ("FAILED", "CANCELLED", "TIMED_OUT"):
            pytest.fail(f"the job ended {reply}")
        time.sleep(0.2)
    items = [item for poll in polls for item in poll]
    return polls, b"".join(base64.b64decode(str(item["audio_base64"])) for item in items if "encoding" in item)


def test_a_streaming_job_gives_pieces_of_a_chunk_before_the_chunk_is_done(turbo_stack: Stack) -> None:
    # Sampled hot, the random model seldom says its stop token (a few in a thousand a step), so the one chunk runs
    # long; its pieces come after 5, 15, 35, 75... tokens (STREAM_TOKENS=5 here, doubling), then the rest. A chunk
    # that stops before its third piece (about one job in twenty) proves nothing either way: another is sent.
    body = {"input": {"text": SENTENCE, "stream": True, "temperature": 5.0, "response_format": "wav"}}
    for _ in range(MAX_STREAMED_JOBS):
        polls, pcm = _streamed_job(turbo_stack, body)
        tokens = len(pcm) // 2 // 960 - 3  # Turbo speaks 960 samples a token, and generate appends three silent ones
        assert len(pcm) // 2 % 960 == 0, polls
        if tokens >= 15:
            break
    else:
        pytest.fail(f"{MAX_STREAMED_JOBS} chunks in a row stopped before 15 tokens")
    # The worker cuts what it publishes into half-second slices, so several audio items alone prove nothing: the
    # engine's pieces come tokens apart, so audio must come in separate polls, the first long before the end.
    with_audio = [index for index, poll in enumerate(polls) if any("audio_base64" in item for item in poll)]
    assert len(with_audio) >= 2 and {"progress": "1/1"} not in polls[with_audio[0]], polls


def test_the_checkpoint_says_what_it_is(checkpoints: Checkpoints) -> None:
    notice = (Path(checkpoints("turbo")) / "checkpoint.json").read_text()
    assert "noise-like speech" in notice and "not for listening" in notice
