"""What the job machinery costs: a one-word job's round trip minus the engine's own time, against a bare Celery
echo round trip on the same Redis, both through a real worker process (prefork, one child).

Run: `python -m bench.queue`. Target: our added latency at most 3x the bare Celery round trip at p50.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.echo_app import ECHO_REDIS_URL
from bench.echo_app import app as echo_app
from core.redis_clients import async_client
from core.settings import Settings
from tasks.celery_app import create_celery_app
from tasks.client import JobClient
from tasks.jobs import JobStatus
from tasks.spec import AudioFormat, SynthesisSpec
from tests.support.processes import start_process, start_worker, wait_for

JOBS = 300
WARM_UP = 20
JOB_REDIS_URL = "redis://127.0.0.1:6379/15"
# mp3 is the default format; wav shows the machinery without the cost of a real encoder.
FORMATS: tuple[AudioFormat, ...] = ("mp3", "wav")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def bare_celery_round_trips(log_dir: Path) -> list[float]:
    redis.Redis.from_url(ECHO_REDIS_URL).flushdb()
    worker = start_process(
        [
            sys.executable, "-m", "celery", "-A", "bench.echo_app", "worker", "-P", "prefork", "-c", "1",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
        ],
        {},
        log_dir / "echo-worker.log",
    )  # fmt: skip
    try:
        echo = echo_app.tasks["echo"]
        wait_for(lambda: _echo_answers(echo), 60, "echo worker")
        samples = []
        for n in range(WARM_UP + JOBS):
            started = time.perf_counter()
            assert echo.delay(n).get(timeout=10) == n
            if n >= WARM_UP:
                samples.append(time.perf_counter() - started)
        return samples
    finally:
        worker.stop()


def _echo_answers(echo: object) -> bool:
    try:
        return bool(echo.delay(0).get(timeout=1) == 0)  # type: ignore[attr-defined]
    except Exception:
        return False


async def job_overheads(settings: Settings, response_format: AudioFormat) -> tuple[list[float], list[float]]:
    client = async_client(settings)
    jobs = JobClient(settings, client, create_celery_app(settings))
    spec = SynthesisSpec(
        text="Hello.", model="espeak", voice="alloy", output_shape="custom", response_format=response_format
    )
    round_trips, overheads = [], []
    try:
        for n in range(WARM_UP + JOBS):
            started = time.perf_counter()
            record = await jobs.submit(spec)
            async for _ in jobs.events(record.id, timeout_s=10):
                pass
            elapsed = time.perf_counter() - started
            done = await jobs.get(record.id)
            assert done is not None and done.status == JobStatus.COMPLETED, done
            if n >= WARM_UP:
                round_trips.append(elapsed)
                overheads.append(elapsed - float(done.extra["engine_ms"]) / 1000)
    finally:
        await client.aclose()
    return round_trips, overheads


def _line(label: str, seconds: list[float]) -> str:
    return f"{label:30s} p50 {percentile(seconds, 50) * 1000:6.2f} ms   p99 {percentile(seconds, 99) * 1000:6.2f} ms"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp)
        bare = bare_celery_round_trips(log_dir)
        env = {"REDIS_URL": JOB_REDIS_URL, "DATA_DIR": str(log_dir / "data"), "STORAGE_BACKEND": "local"}
        redis.Redis.from_url(JOB_REDIS_URL).flushdb()
        worker = start_worker(env, log_dir)
        try:
            settings = Settings(redis_url=JOB_REDIS_URL, data_dir=log_dir / "data")
            results = {fmt: asyncio.run(job_overheads(settings, fmt)) for fmt in FORMATS}
        finally:
            worker.stop()
    print(f"{JOBS} round trips each, after {WARM_UP} warm-up, one prefork worker child, local Redis")
    print(_line("bare Celery echo round trip:", bare))
    for fmt, (round_trips, overheads) in results.items():
        print(f"one-word job as {fmt} (local store):")
        print(_line("  round trip:", round_trips))
        print(_line("  added over the engine's time:", overheads) + "   (record, publish, encode, deliver, events)")
        ratio = statistics.median(overheads) / statistics.median(bare)
        print(f"  added / bare Celery at p50: {ratio:.2f}x (target: at most 3x)")


if __name__ == "__main__":
    main()
