"""The job queue with real parts: Redis, Celery worker processes, the espeak engine, a moto S3 server over HTTP."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import redis

from core.settings import Settings
from core.storage import local_path, verify_local_url
from tasks.jobs import JobRecord, JobStatus, events_key, record_key
from tasks.secrets import URL_SIGNING_KEY
from tasks.spec import SynthesisSpec
from tests.conftest import settings_from_env
from tests.support.jobs import SyncJobs, speech_text
from tests.support.processes import ManagedProcess, engine_process, pool_children, start_worker, wait_for
from tests.support.s3 import MotoS3

pytestmark = pytest.mark.integration

# A job that takes seconds on this engine: 40 chunks, each stretched 4x by the tempo filter, encoded as Opus.
SLOW = {"speed": 0.25, "response_format": "opus"}


def spec(text: str = "Hello from the queue.", **overrides: object) -> SynthesisSpec:
    return SynthesisSpec(text=text, model="espeak", voice="alloy", **overrides)  # type: ignore[arg-type]


@pytest.fixture
def env(service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, "MAX_CHUNK_CHARS": "100", "MAX_ATTEMPTS": "2"}


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return settings_from_env(env)


@pytest.fixture
def jobs(settings: Settings) -> SyncJobs:
    return SyncJobs(settings)


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[ManagedProcess]:
    process = start_worker(env, tmp_path)
    yield process
    process.stop()


def test_unknown_id_is_not_a_queued_job(jobs: SyncJobs) -> None:
    record = jobs.submit(spec())
    assert jobs.get(record.id) is not None and jobs.get(record.id).status == JobStatus.IN_QUEUE  # type: ignore[union-attr]
    assert jobs.get("no-such-job") is None


def test_job_end_to_end_into_local_store(jobs: SyncJobs, settings: Settings, worker: ManagedProcess) -> None:
    record = jobs.submit(spec(output_shape="custom", response_format="wav"))
    events = jobs.events(record.id)
    done = jobs.get(record.id)
    assert done is not None and done.status == JobStatus.COMPLETED, worker.log()
    statuses = [e.status for e in events if e.type == "status"]
    assert statuses == [JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS, JobStatus.COMPLETED]
    progress = [(int(e.fields["done"]), int(e.fields["total"])) for e in events if e.type == "progress"]
    assert progress == [(0, 1), (1, 1)]
    assert done.output is not None and done.output["status"] == "success"
    assert done.output["sample_rate"] == 24000 and done.output["duration_sec"] > 0.5
    url = httpx.URL(done.output["audio_url"])
    object_key = url.path.removeprefix("/files/")
    # Signed with the deployment's own key, which no one can derive from the configuration.
    signing_key: Any = redis.Redis.from_url(settings.redis_url).get(URL_SIGNING_KEY)
    assert isinstance(signing_key, bytes) and len(signing_key) == 64
    assert verify_local_url(signing_key, object_key, url.params["expires"], url.params["signature"])
    stored = local_path(settings.local_store_dir, object_key)
    with av.open(str(stored)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "pcm_s16le" and stream.rate == 24000
    assert done.delay_ms >= 0 and done.execution_ms > 0 and done.attempts == 1


def test_job_into_s3_with_presigned_url_fetched_over_http(env: dict[str, str], tmp_path: Path, moto_s3: MotoS3) -> None:
    s3_env = {**env, **moto_s3.env()}
    worker = start_worker(s3_env, tmp_path)
    try:
        jobs = SyncJobs(settings_from_env(s3_env))
        record = jobs.submit(spec(output_shape="custom", response_format="mp3"))
        done = jobs.wait_status(record.id, {JobStatus.COMPLETED, JobStatus.FAILED})
        assert done.status == JobStatus.COMPLETED, (done.error, worker.log())
        assert done.output is not None
        response = httpx.get(done.output["audio_url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/mpeg"
        assert moto_s3.keys() == [f"tts/{record.id}.mp3"]
        assert response.content[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3") or response.content[0] == 0xFF
    finally:
        worker.stop()


def test_cancel_queued_job_never_runs(jobs: SyncJobs, env: dict[str, str], tmp_path: Path) -> None:
    record = jobs.submit(spec())
    assert jobs.cancel(record.id).applied
    worker = start_worker(env, tmp_path)
    try:
        follow_up = jobs.submit(spec())
        jobs.wait_status(follow_up.id, {JobStatus.COMPLETED})
        cancelled = jobs.get(record.id)
        assert cancelled is not None
        assert cancelled.status == JobStatus.CANCELLED and cancelled.attempts == 0
        assert cancelled.started_at is None and cancelled.output is None
    finally:
        worker.stop()


def test_cancel_running_job_stops_it(jobs: SyncJobs, worker: ManagedProcess) -> None:
    record = jobs.submit(spec(speech_text(40), **SLOW))
    jobs.wait_progress(record.id, 1)
    assert jobs.cancel(record.id).applied
    wait_for(lambda: "cancelled while synthesizing" in worker.log(), 30, "worker to stop")
    ended = jobs.get(record.id)
    assert ended is not None and ended.status == JobStatus.CANCELLED
    assert ended.chunks_done < ended.chunks_total


def test_worker_killed_mid_job_loses_nothing(jobs: SyncJobs, worker: ManagedProcess) -> None:
    record = jobs.submit(spec(speech_text(40), **SLOW))
    running = jobs.wait_progress(record.id, 2)
    assert running.status == JobStatus.IN_PROGRESS
    [child] = pool_children(worker.process.pid)
    os.kill(child, signal.SIGKILL)
    done = jobs.wait_status(record.id, {JobStatus.COMPLETED, JobStatus.FAILED}, timeout_s=120)
    assert done.status == JobStatus.COMPLETED, (done.error, worker.log())
    assert done.attempts == 2
    assert jobs.counts()["retried"] == 1


def test_poison_job_fails_after_max_attempts(jobs: SyncJobs, worker: ManagedProcess, settings: Settings) -> None:
    record = jobs.submit(spec(speech_text(40), **SLOW))
    for attempt in range(1, settings.max_attempts + 1):
        running = jobs.wait_until(record.id, partial(_started_attempt, attempt))
        assert running.status == JobStatus.IN_PROGRESS
        [child] = pool_children(worker.process.pid)
        os.kill(child, signal.SIGKILL)
        wait_for(partial(_replaced, worker, child), 30, "child replaced")
    failed = jobs.wait_status(record.id, {JobStatus.FAILED, JobStatus.COMPLETED}, timeout_s=120)
    assert failed.status == JobStatus.FAILED
    assert failed.error is not None and "2 attempts" in failed.error


def _started_attempt(attempt: int, record: JobRecord) -> bool:
    return record.attempts == attempt and record.chunks_done >= 1


def _replaced(worker: ManagedProcess, child: int) -> bool:
    return child not in pool_children(worker.process.pid)


def test_job_over_time_limit_ends_timed_out(jobs: SyncJobs, worker: ManagedProcess) -> None:
    record = jobs.submit(spec(speech_text(40), **SLOW), execution_timeout_s=0.5)
    ended = jobs.wait_status(record.id, {JobStatus.TIMED_OUT, JobStatus.COMPLETED, JobStatus.FAILED})
    assert ended.status == JobStatus.TIMED_OUT, worker.log()
    assert ended.error == "The job ran past its execution time limit."
    assert jobs.retry(record.id).applied
    # The retried job really runs again, from a clean record, under the same time limit.
    again = jobs.wait_until(record.id, lambda r: r.status == JobStatus.TIMED_OUT and r.attempts == 1)
    assert again.started_at is not None and again.started_at > ended.started_at  # type: ignore[operator]


def test_records_expire(jobs: SyncJobs, worker: ManagedProcess, redis_client: redis.Redis) -> None:
    record = jobs.submit(spec(), ttl_s=30, retention_s=1)
    jobs.wait_status(record.id, {JobStatus.COMPLETED})
    assert redis_client.ttl(record_key(record.id)) <= 1
    wait_for(lambda: jobs.get(record.id) is None, 5, "record to expire")
    assert not redis_client.exists(events_key(record.id))


def test_purge_queue_drops_only_queued_jobs(jobs: SyncJobs) -> None:
    queued = [jobs.submit(spec()).id for _ in range(3)]
    assert jobs.purge() == 3
    assert all(jobs.get(job_id).status == JobStatus.CANCELLED for job_id in queued)  # type: ignore[union-attr]
    assert jobs.counts()["inQueue"] == 0


def test_s3_down_then_up(env: dict[str, str], tmp_path: Path, moto_s3: MotoS3) -> None:
    s3_env = {**env, **moto_s3.env(), "DELIVERY_MAX_RETRIES": "8"}
    worker = start_worker(s3_env, tmp_path)
    try:
        jobs = SyncJobs(settings_from_env(s3_env))
        moto_s3.stop()
        record = jobs.submit(spec(output_shape="custom"))
        jobs.wait_progress(record.id, 1)
        time.sleep(1.0)
        moto_s3.start()
        done = jobs.wait_status(record.id, {JobStatus.COMPLETED, JobStatus.FAILED}, timeout_s=120)
        assert done.status == JobStatus.COMPLETED, (done.error, worker.log())
        assert httpx.get(done.output["audio_url"]).status_code == 200  # type: ignore[index]
    finally:
        worker.stop()


def test_s3_down_for_good_fails_with_clear_error(env: dict[str, str], tmp_path: Path, moto_s3: MotoS3) -> None:
    s3_env = {**env, **moto_s3.env(), "DELIVERY_MAX_RETRIES": "1"}
    moto_s3.stop()
    worker = start_worker(s3_env, tmp_path)
    try:
        jobs = SyncJobs(settings_from_env(s3_env))
        record = jobs.submit(spec(output_shape="custom"))
        done = jobs.wait_status(record.id, {JobStatus.COMPLETED, JobStatus.FAILED}, timeout_s=120)
        assert done.status == JobStatus.FAILED
        assert done.error is not None and done.error.startswith("Could not upload the result to object storage")
    finally:
        worker.stop()


def test_worker_that_cannot_load_its_model_exits_non_zero(env: dict[str, str], tmp_path: Path) -> None:
    broken = {**env, "TTS_ENGINE": "chatterbox", "CHATTERBOX_CHECKPOINT_DIR": str(tmp_path / "missing")}
    worker = start_worker(broken, tmp_path, wait_ready=False)
    assert worker.process.wait(60) != 0
    assert "could not load the chatterbox engine; this worker takes no jobs" in worker.log()


def _frozen_engine(worker: ManagedProcess) -> int:
    engine = engine_process(worker.process.pid)
    assert engine is not None, worker.log()
    os.kill(engine, signal.SIGSTOP)
    return engine


def test_a_job_whose_engine_process_dies_runs_again_once_it_is_back(jobs: SyncJobs, worker: ManagedProcess) -> None:
    # Frozen, the engine holds the job's chunks; killed, it takes them with it.
    engine = _frozen_engine(worker)
    record = jobs.submit(spec(speech_text(4)))
    jobs.wait_status(record.id, {JobStatus.IN_PROGRESS})
    os.kill(engine, signal.SIGKILL)
    done = jobs.wait_status(record.id, {JobStatus.COMPLETED, JobStatus.FAILED}, timeout_s=120)
    assert done.status == JobStatus.COMPLETED, (done.error, worker.log())
    assert done.attempts == 2
    restarted = engine_process(worker.process.pid)
    assert restarted is not None and restarted != engine
    assert "lost its engine process; it will run again" in worker.log()
    assert "died (exit code -9); starting it again" in worker.log()


def test_an_engine_that_keeps_dying_stops_the_worker_loudly(env: dict[str, str], tmp_path: Path) -> None:
    worker = start_worker({**env, "ENGINE_MAX_RESTARTS": "1"}, tmp_path)
    try:
        for started in (1, 2):
            wait_for(partial(_engine_started, worker, started), 60, f"engine start {started}")
            engine = engine_process(worker.process.pid)
            assert engine is not None
            os.kill(engine, signal.SIGKILL)
        assert worker.process.wait(60) != 0
        assert "the engine process died 2 times within 600 s; stopping this worker" in worker.log()
    finally:
        worker.stop()


def _engine_environment(worker: ManagedProcess) -> dict[str, str]:
    engine = engine_process(worker.process.pid)
    assert engine is not None, worker.log()
    pairs = Path(f"/proc/{engine}/environ").read_bytes().decode().split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def test_the_engine_process_waits_passively_in_openmp_unless_told_otherwise(
    env: dict[str, str], worker: ManagedProcess, tmp_path: Path
) -> None:
    assert _engine_environment(worker)["OMP_WAIT_POLICY"] == "PASSIVE"
    told = start_worker({**env, "OMP_WAIT_POLICY": "ACTIVE"}, tmp_path)
    try:
        assert _engine_environment(told)["OMP_WAIT_POLICY"] == "ACTIVE"
    finally:
        told.stop()


def _engine_started(worker: ManagedProcess, times: int) -> bool:
    return worker.log().count("engine espeak loaded") == times
