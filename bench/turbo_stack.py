"""What the ChatterBox benchmarks share: a random-weight Turbo checkpoint with long chunks, and the whole service
(API, Redis, a worker whose engine process loads it) running on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.checkpoint import BENCH_MEAN_TOKENS, BENCH_MIN_TOKENS
from tests.support.processes import REPO_ROOT, ManagedProcess, engine_process, start_api, start_worker
from tests.support.s3 import free_port

BENCH_REDIS_URL = "redis://127.0.0.1:6379/13"
CHECKPOINTS = REPO_ROOT / "data" / "bench-checkpoints"


def turbo_checkpoint() -> Path:
    """A seeded Turbo checkpoint with long, nearly steady chunks, built once and kept under data/ (noise-like
    speech)."""
    out = CHECKPOINTS / f"turbo-{BENCH_MEAN_TOKENS}-min{BENCH_MIN_TOKENS}"
    manifest = out / "checkpoint.json"
    if manifest.is_file():
        built = json.loads(manifest.read_text())
        if (built["mean_tokens"], built.get("min_tokens")) == (BENCH_MEAN_TOKENS, BENCH_MIN_TOKENS):
            return out
    command = [sys.executable, "-m", "bench.checkpoint", "--variant", "turbo", "--out", str(out)]
    lengths = ["--mean-tokens", str(BENCH_MEAN_TOKENS), "--min-tokens", str(BENCH_MIN_TOKENS)]
    subprocess.run([*command, *lengths], cwd=REPO_ROOT, check=True)
    return out


@dataclass
class RunningStack:
    base_url: str
    api: ManagedProcess
    worker: ManagedProcess

    def engine_peak_rss_mb(self) -> float:
        """The engine process's peak resident memory so far."""
        pid = engine_process(self.worker.process.pid)
        if pid is None:
            return float("nan")
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextmanager
def turbo_stack(checkpoint: Path, **settings: str) -> Iterator[RunningStack]:
    """API and a ChatterBox worker on `checkpoint`, with these settings (environment variables)."""
    client = redis.Redis.from_url(BENCH_REDIS_URL)
    client.flushdb()
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp)
        port = free_port()
        env = {
            "REDIS_URL": BENCH_REDIS_URL,
            "DATA_DIR": str(log_dir / "data"),
            "LOG_LEVEL": "WARNING",
            "STORAGE_BACKEND": "none",
            "TTS_ENGINE": "chatterbox",
            "CHATTERBOX_VARIANT": "turbo",
            "CHATTERBOX_CHECKPOINT_DIR": str(checkpoint),
            "CHATTERBOX_DEVICE": "cpu",
            "MAX_QUEUE_DEPTH": "100000",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            **settings,
        }
        concurrency = int(env.get("WORKER_CONCURRENCY", "1"))
        worker = start_worker({**env, "LOG_LEVEL": "INFO"}, log_dir, concurrency=concurrency)
        api = start_api(env, log_dir, port)
        try:
            yield RunningStack(f"http://127.0.0.1:{port}", api, worker)
        finally:
            api.stop()
            worker.stop()
            client.flushdb()
