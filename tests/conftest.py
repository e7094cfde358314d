from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core.settings import Settings
from tests.support.s3 import MotoS3

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


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
    server = MotoS3()
    server.start()
    server.create_bucket()
    yield server
    server.stop()
