"""The whole service on this machine: `make run` (`python -m infra.dev_stack`).

Makes sure a Redis answers at REDIS_URL (starting a local one if need be), then runs three child processes, their
output on this terminal prefixed by name:

- api: uvicorn on HOST:PORT (settings; 127.0.0.1:8000 by default);
- worker: one Celery worker on the configured engine (espeak-ng unless TTS_ENGINE says otherwise), consuming the
  TTS and the service queue with WORKER_CONCURRENCY prefork children;
- flower: Flower on 127.0.0.1:FLOWER_PORT (5555) through `infra.flower`: with FLOWER_BASIC_AUTH ("user:password")
  if set, else with its JSON API (/api/workers, /api/tasks) open on loopback. A taken port skips Flower instead of
  failing.

Ctrl-C or SIGTERM stops them all (a second one kills at once); if one dies on its own, the rest are stopped and
the exit status is 1. docker-compose.yml runs the same commands, built by the functions below.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import IO, Any

from core.settings import Settings, get_settings
from infra import ensure_redis
from infra.flower import CELERY_APP
from infra.healthcheck import fetch_health

log = logging.getLogger("stack")

API_FACTORY = "api.main:create_app"
FLOWER_ADDRESS = "127.0.0.1"
STOP_TIMEOUT_S = 20.0
POLL_S = 0.25
HEALTH_TIMEOUT_S = 1.0
NAME_WIDTH = 6
_PR_SET_PDEATHSIG = 1


def api_command(host: str, port: int) -> list[str]:
    return ["uvicorn", API_FACTORY, "--factory", "--host", host, "--port", str(port)]


def worker_command(queues: Sequence[str], log_level: str = "INFO") -> list[str]:
    # --quiet drops Celery's 20-line banner (the command line says the same); -l sets Celery's own loggers, whose
    # "ready." and per-task lines are worth seeing. The pool's size is WORKER_CONCURRENCY (tasks/celery_app.py).
    return [
        "celery", "-A", CELERY_APP, "--quiet", "worker",
        "-P", "prefork", "-Q", ",".join(queues), "-l", log_level.upper(),
    ]  # fmt: skip


def flower_command(port: int, address: str) -> list[str]:
    return ["infra.flower", f"--port={port}", f"--address={address}"]


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    @property
    def running(self) -> bool:
        return self.process.poll() is None


class _Signals:
    """Records SIGINT/SIGTERM; the main loop does the logging and the stopping, outside the handler."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.force = threading.Event()
        self.received: list[str] = []

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signal.Signals(signum).name)
        (self.force if self.stop.is_set() else self.stop).set()


class _PrefixFormatter(logging.Formatter):
    """`api    | <line>`: the source is the last part of the logger's name."""

    def format(self, record: logging.LogRecord) -> str:
        source = record.name.rpartition(".")[2]
        record.source = f"{source:<{NAME_WIDTH}}"
        return super().format(record)


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_PrefixFormatter("%(source)s | %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the readiness probe's requests are the API's to log


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # Servers set SO_REUSEADDR, so a port with only TIME_WAIT connections left counts as free for them too.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec hook that has Linux send the child SIGTERM if this process dies without cleaning up (SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not in the forked child

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


def _spawn(name: str, command: Sequence[str], env: Mapping[str, str], preexec: Callable[[], None] | None) -> Child:
    log.info("starting %s: %s", name, " ".join(command))
    process = subprocess.Popen(
        [sys.executable, "-m", *command],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # Each child leads its own process group: Ctrl-C reaches only this process, which stops the children in
        # order, and a group kill also takes a dead worker's orphaned pool processes.
        process_group=0,
        preexec_fn=preexec,  # safe: every child is spawned before the output threads start
    )
    return Child(name, process)


def _pump(name: str, stream: IO[bytes]) -> None:
    out = logging.getLogger(f"stack.{name}")
    for raw in iter(stream.readline, b""):
        out.info("%s", raw.decode("utf-8", errors="replace").rstrip())
    stream.close()


def _kill_group(child: Child) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already empty
        os.killpg(child.process.pid, signal.SIGKILL)


def _stop_all(children: Sequence[Child], signals: _Signals, timeout_s: float) -> None:
    stopping = [child for child in children if child.running]
    for child in stopping:
        child.process.send_signal(signal.SIGTERM)  # uvicorn and Flower exit; Celery shuts down warm
    deadline = time.monotonic() + timeout_s
    for child in children:
        while child.running and time.monotonic() < deadline and not signals.force.is_set():
            time.sleep(0.05)
        if child.running:
            why = "on a second signal" if signals.force.is_set() else f"after {timeout_s:.0f} s"
            log.warning("%s still running %s; killing it", child.name, why)
            _kill_group(child)
        code = child.process.wait()
        if child in stopping and code not in (0, -signal.SIGTERM):
            log.warning("%s exited with status %d", child.name, code)
        # Anything left in the group (pool processes of a killed worker) goes too.
        _kill_group(child)


def _supervise(
    children: Sequence[Child], settings: Settings, signals: _Signals, health_url: str, on_ready: Callable[[], None]
) -> int:
    ready = loading_said = False
    while not signals.stop.is_set():
        for child in children:
            code = child.process.poll()
            if code is not None:
                log.error("%s exited unexpectedly with status %d; stopping the rest", child.name, code)
                return 1
        if not ready:
            health = fetch_health(health_url, settings, timeout_s=HEALTH_TIMEOUT_S)
            if health is not None and _workers_online(health):
                ready = True
                on_ready()
            elif health is not None and not loading_said:
                loading_said = True
                log.info("%s", _loading_message(settings))
        signals.stop.wait(POLL_S)
    log.info("%s received; stopping %s", signals.received[0], ", ".join(child.name for child in children))
    return 0


def _loading_message(settings: Settings) -> str:
    model = f"ChatterBox {settings.chatterbox_variant}" if settings.tts_engine == "chatterbox" else "espeak-ng"
    wait = " (20 to 80 s on a CPU)" if settings.tts_engine == "chatterbox" else ""
    return (
        f"the API answers; the worker is loading its {model} model{wait}. Speech requests get 503 until it is "
        "ready, which this says."
    )


def _workers_online(health: Mapping[str, Any]) -> bool:
    workers = health.get("workers") or {}
    return bool(workers.get("idle", 0) + workers.get("running", 0))


def _banner(settings: Settings, base_url: str, flower_url: str | None) -> str:
    auth = ' -H "Authorization: Bearer $API_KEY"' if settings.api_keys else ""
    flower = flower_url or "not running"
    body = '{"model":"tts-1","voice":"alloy","input":"Hello from the TTS service."}'
    example = f"curl -s {base_url}/v1/audio/speech{auth} -H 'Content-Type: application/json' -d '{body}' -o hello.mp3"
    urls = f"API {base_url}  playground {base_url}/playground/  docs {base_url}/docs  Flower {flower}"
    return f"ready: {urls}  try: {example}"


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def run() -> int:
    _configure_logging()
    signals = _Signals()
    signals.install()
    settings = get_settings()
    if not ensure_redis.redis_answers(settings.redis_url):
        ensure_redis.start_redis(settings.redis_url, settings.data_dir / "redis")

    base_url = settings.local_base_url
    flower_port = settings.flower_port
    env = _child_env()
    commands = {
        "api": api_command(settings.host, settings.port),
        "worker": worker_command([settings.tts_queue, settings.service_queue], settings.log_level),
    }
    flower_url: str | None = None
    if _port_free(FLOWER_ADDRESS, flower_port):
        commands["flower"] = flower_command(flower_port, FLOWER_ADDRESS)
        flower_url = f"http://{FLOWER_ADDRESS}:{flower_port}"
        flower_url += " (basic auth)" if env.get("FLOWER_BASIC_AUTH") else " (its JSON API open on loopback)"
    else:
        log.warning("port %d is taken: running without Flower (set FLOWER_PORT to use another)", flower_port)

    preexec = _die_with_parent()
    children: list[Child] = []
    pumps: list[threading.Thread] = []
    exit_code = 1
    try:
        for name, command in commands.items():
            if signals.stop.is_set():
                break
            children.append(_spawn(name, command, env, preexec))
        pumps += [
            threading.Thread(
                target=_pump, args=(child.name, child.process.stdout), name=f"pump-{child.name}", daemon=True
            )
            for child in children
        ]
        for pump in pumps:
            pump.start()
        exit_code = _supervise(
            children,
            settings,
            signals,
            f"{base_url}/health",
            lambda: log.info("%s", _banner(settings, base_url, flower_url)),
        )
    finally:
        _stop_all(children, signals, STOP_TIMEOUT_S)
    for pump in pumps:
        pump.join(timeout=2)
    log.info("stopped")
    return exit_code


if __name__ == "__main__":
    sys.exit(run())
