"""Audio on job event streams is bounded per job and freed as its caller reads it: Redis (which runs with
`noeviction`) never holds more than AUDIO_STREAM_MAX_BYTES of one job's unread audio."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tasks.jobs import AUDIO_UNREAD_FIELD, JobStatus, events_key, record_key
from tasks.spec import SynthesisSpec
from tests.conftest import Stack, redis_db_url, running_stack
from tests.support.jobs import SyncJobs, speech_text

pytestmark = pytest.mark.integration

BOUND = 256 * 1024
PIECE = 24_000 * 2  # the largest piece the pipeline publishes: half a second of pcm, with room to spare
# Far more pcm than the bound: about 40 s of speech, 4x longer at speed 0.25 (some 7 MB).
TEXT = speech_text(8)
LONG = {"model": "tts-1", "voice": "alloy", "input": TEXT, "response_format": "pcm", "speed": 0.25}


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    limits = {"AUDIO_STREAM_MAX_BYTES": str(BOUND), "AUDIO_STREAM_STALL_S": "1.5"}
    with running_stack(tmp_path_factory.mktemp("streams"), redis_db_url(10), **limits) as running:
        yield running


def held_audio(stack: Stack, job_id: str) -> int:
    entries: Any = stack.redis.xrange(events_key(job_id))
    return sum(len(fields.get(b"data", b"")) for _, fields in entries)


def test_a_reader_gets_every_byte_past_the_bound_and_the_stream_is_freed_as_read(bounded: Stack) -> None:
    peak = 0
    stop = threading.Event()
    job: list[str] = []

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            if job:
                peak = max(peak, held_audio(bounded, job[0]))
            stop.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with (
            httpx.Client(timeout=120) as client,
            client.stream("POST", f"{bounded.base_url}/v1/audio/speech", json=LONG) as response,
        ):
            assert response.status_code == 200
            job.append(response.headers["x-job-id"])
            audio = b"".join(response.iter_bytes())
    finally:
        stop.set()
        watcher.join()
    job_id = job[0]
    state = httpx.get(f"{bounded.base_url}/status/{job_id}").json()
    assert state["status"] == "COMPLETED", state
    assert len(audio) > 20 * BOUND
    assert abs(len(audio) / 2 / 24000 - state["output"]["duration_sec"]) < 0.01
    assert 0 < peak <= BOUND + PIECE
    assert bounded.redis.xlen(events_key(job_id)) == 0, "what the caller has read is freed"
    assert int(bounded.redis.hget(record_key(job_id), AUDIO_UNREAD_FIELD) or 0) == 0


def test_a_caller_that_reads_nothing_holds_no_more_than_the_bound_and_its_job_is_stopped(bounded: Stack) -> None:
    jobs = SyncJobs(bounded.settings)
    spec = SynthesisSpec(
        text=TEXT, model="espeak", voice="alloy", response_format="pcm", speed=0.25, publish_audio=True
    )
    record = jobs.submit(spec)
    done = jobs.wait_status(record.id, {JobStatus.COMPLETED, JobStatus.FAILED}, timeout_s=60)
    assert done.status == JobStatus.FAILED
    assert done.error is not None and "read none of its audio for 1.5 s" in done.error
    assert 0 < held_audio(bounded, record.id) <= BOUND + PIECE
