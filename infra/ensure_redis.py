"""Make sure a Redis answers at REDIS_URL, starting a local redis-server when none does.

`python -m infra.ensure_redis` is what `make run`, `make test` and `.ci/run` call. It only ever starts a server
for a loopback URL; a remote REDIS_URL that does not answer is an error to report, not something to paper over.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import redis

from core.settings import get_settings

log = logging.getLogger("ensure_redis")

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def find_redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    # The `redis-server` wheel ships a binary; it is the fallback where no system package is installed.
    try:
        import redis_server
    except ImportError:
        return None
    return str(redis_server.REDIS_SERVER_PATH)


def start_redis(url: str, data_dir: Path) -> None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    if host not in LOOPBACK_HOSTS:
        raise SystemExit(f"Redis at {url} does not answer, and it is not on this machine: start it there.")
    binary = find_redis_server() or _install_redis_server()
    data_dir.mkdir(parents=True, exist_ok=True)
    log.info("no Redis answers at %s; starting %s on port %d", url, binary, port)
    subprocess.run(
        [
            binary,
            "--daemonize", "yes",
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(data_dir.resolve()),
            "--logfile", str((data_dir / "redis.log").resolve()),
        ],
        check=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if time.monotonic() > deadline:
            raise SystemExit(f"started redis-server but nothing answers at {url}; see {data_dir / 'redis.log'}")
        time.sleep(0.1)


def _install_redis_server() -> str:
    log.info("redis-server not found; installing the redis-server wheel into this environment")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "redis-server"], check=True)
    binary = find_redis_server()
    if binary is None:
        raise SystemExit("could not find or install redis-server; install Redis and set REDIS_URL")
    return binary


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    if redis_answers(settings.redis_url):
        log.info("Redis answers at %s", settings.redis_url)
        return
    start_redis(settings.redis_url, settings.data_dir / "redis")


if __name__ == "__main__":
    main()
