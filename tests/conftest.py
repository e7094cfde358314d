from __future__ import annotations

import os

# The tests never reach the Hugging Face Hub: read when huggingface_hub is first imported, so set before anything is.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from core.settings import Settings
from tests.support.checkpoints import checkpoint
from tests.support.processes import ManagedProcess, start_api, start_worker
from tests.support.s3 import MotoS3, free_port, running_moto_s3

TEST_REDIS = os.environ.get("TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
"""The Redis server the tests use (databases 9 to 15 on it); set it to run two test sessions side by side."""


def redis_db_url(db: int) -> str:
    return f"{TEST_REDIS}/{db}"


TEST_REDIS_URL = redis_db_url(9)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.fail(f"no Redis at {TEST_REDIS_URL}: run `python -m infra.ensure_redis` (make test does)")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def service_env(tmp_path: Path, redis_client: redis.Redis) -> dict[str, str]:
    """Environment for worker and API processes: an isolated Redis DB and data directory."""
    return {
        "REDIS_URL": TEST_REDIS_URL,
        "DATA_DIR": str(tmp_path / "data"),
        "STORAGE_BACKEND": "local",
        "LOG_LEVEL": "INFO",
    }


def settings_from_env(env: dict[str, str]) -> Settings:
    return Settings(**{key.lower(): value for key, value in env.items()})  # type: ignore[arg-type]


@pytest.fixture
def moto_s3() -> Iterator[MotoS3]:
    with running_moto_s3() as server:
        yield server


@dataclass
class Stack:
    """A real API server and a real worker process on an isolated Redis DB and data directory."""

    base_url: str
    env: dict[str, str]
    api: ManagedProcess
    worker: ManagedProcess
    redis: redis.Redis

    @property
    def settings(self) -> Settings:
        return settings_from_env(self.env)


def start_stack(tmp_dir: Path, redis_url: str, *, worker_queues: str = "tts", **overrides: str) -> Stack:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    env = {
        "REDIS_URL": redis_url,
        "DATA_DIR": str(tmp_dir / "data"),
        "STORAGE_BACKEND": "local",
        "LOG_LEVEL": "INFO",
        **overrides,
    }
    port = free_port()
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"  # the worker signs local-store links for this API
    concurrency = int(env.get("WORKER_CONCURRENCY", "1"))  # the pool size `celery worker -c` is given
    worker = start_worker(env, tmp_dir, queues=worker_queues, concurrency=concurrency)
    api = start_api(env, tmp_dir, port)
    return Stack(base_url=f"http://127.0.0.1:{port}", env=env, api=api, worker=worker, redis=client)


def stop_stack(stack: Stack) -> None:
    stack.api.stop()
    stack.worker.stop()
    stack.redis.flushdb()
    stack.redis.close()


@contextmanager
def running_stack(tmp_dir: Path, redis_url: str, **overrides: str) -> Iterator[Stack]:
    """`start_stack` for a `with` block (a module fixture's body), stopped however the block ends."""
    running = start_stack(tmp_dir, redis_url, **overrides)
    try:
        yield running
    finally:
        stop_stack(running)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One API + worker per test module (start-up costs seconds); tests must not depend on each other's jobs."""
    running = start_stack(tmp_path_factory.mktemp("stack"), TEST_REDIS_URL)
    yield running
    stop_stack(running)


class Checkpoints:
    """Random-weight ChatterBox checkpoints (tests/support/checkpoints.py), each built when first asked for."""

    def __init__(self, base: Path) -> None:
        self._base = base

    def __call__(self, variant: str) -> Path:
        return checkpoint(variant, self._base)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Checkpoints:
    kept = os.environ.get("TEST_CHECKPOINT_DIR")
    return Checkpoints(Path(kept) if kept else tmp_path_factory.mktemp("checkpoints"))
