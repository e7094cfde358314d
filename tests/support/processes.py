"""Real processes for integration tests: Celery workers, the API server, a moto S3 server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


@dataclass
class ManagedProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout_s: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_process(args: list[str], env: Mapping[str, str], log_path: Path) -> ManagedProcess:
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        args, cwd=REPO_ROOT, env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT
    )
    return ManagedProcess(process, log_path)


def start_worker(
    env: Mapping[str, str],
    log_dir: Path,
    *,
    queues: str = "tts",
    pool: str = "prefork",
    concurrency: int = 1,
    wait_ready: bool = True,
) -> ManagedProcess:
    name = f"test-{uuid.uuid4().hex[:8]}"
    worker = start_process(
        [
            sys.executable, "-m", "celery", "-A", "workers.celery_worker", "worker",
            "-P", pool, "-c", str(concurrency), "-Q", queues, "-n", f"{name}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO",
        ],
        env,
        log_dir / f"{name}.log",
    )  # fmt: skip
    if wait_ready:
        # A ChatterBox engine takes tens of seconds to load and warm up here; the worker is ready after it.
        wait_for(lambda: "ready." in worker.log() or worker.process.poll() is not None, 300, "worker ready")
        if "tts" in queues.split(","):
            served = "ready for this process"
            wait_for(lambda: served in worker.log() or worker.process.poll() is not None, 60, "engine connected")
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited early:\n{worker.log()}")
    return worker


ENGINE_MODULE = "workers.engine_host.server"


def _children(parent_pid: int) -> list[int]:
    # Each thread lists the children it started (the engine is restarted from a supervisor thread).
    children: list[int] = []
    for task in Path(f"/proc/{parent_pid}/task").glob("*"):
        try:
            children += [int(pid) for pid in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return sorted(children)


def _is_engine(pid: int) -> bool:
    try:
        return ENGINE_MODULE in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return False


def pool_children(parent_pid: int) -> list[int]:
    """The worker's prefork pool processes (not its engine process)."""
    return [pid for pid in _children(parent_pid) if not _is_engine(pid)]


def engine_process(parent_pid: int) -> int | None:
    """The worker's engine process, if one is running."""
    return next((pid for pid in _children(parent_pid) if _is_engine(pid)), None)


def start_api(env: Mapping[str, str], log_dir: Path, port: int) -> ManagedProcess:
    api = start_process(
        [
            sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "info",
        ],
        {**env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"},
        log_dir / f"api-{port}.log",
    )  # fmt: skip
    wait_for(lambda: "Application startup complete" in api.log() or api.process.poll() is not None, 30, "API startup")
    if api.process.poll() is not None:
        raise RuntimeError(f"API exited early:\n{api.log()}")
    return api
