"""The worker parent's hold on its engine process: start it, wait until it serves, restart it when it dies.

The parent never imports torch or touches CUDA: the engine runs in a fresh interpreter (a subprocess, never a
fork), so CUDA is initialised there only and the prefork pool children, forked from the parent, inherit nothing of
it. The children reach the engine through the socket address and key held here.

An engine that dies is started again (the children retry its jobs meanwhile); one that dies more than
`ENGINE_MAX_RESTARTS` times within `RESTART_WINDOW_S`, or cannot load at all, takes the worker down, loudly.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from core.settings import Settings
from workers.engine_host.client import EngineClient
from workers.engine_host.messages import EngineInfo

log = logging.getLogger(__name__)

RESTART_WINDOW_S = 600.0
STOP_TIMEOUT_S = 10.0
OPENMP_WAITS = {"OMP_WAIT_POLICY": "PASSIVE"}
"""The engine runs torch from several threads at once (T3's decoding and S3Gen's voicing, each with its own OpenMP
team on a CPU). OpenMP's default waits spin, so a team waiting for its next parallel region burns a core another
team needs: measured here with 8 ChatterBox Turbo jobs in flight on 2 cores, the engine spent 168 ms of CPU a
speech token with spinning waits and 141 ms with passive ones. Passive waits sleep instead, at the cost of a wake-up
of microseconds a parallel region. Where the environment sets it, the operator's choice stands."""


class EngineStartFailed(Exception):
    pass


class EngineSupervisor:
    def __init__(self, settings: Settings, *, on_give_up: Callable[[], None]) -> None:
        self._settings = settings
        self._on_give_up = on_give_up
        self._directory = Path(tempfile.mkdtemp(prefix="tts-engine-"))
        self.address = str(self._directory / "engine.sock")
        self.authkey = secrets.token_bytes(32)
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._restarts: list[float] = []

    def client(self) -> EngineClient:
        """A client for a pool child (build it after the fork; it connects when first used)."""
        return EngineClient(self.address, self.authkey, connect_timeout_s=self._settings.model_load_timeout_s)

    def start(self) -> EngineInfo:
        """Start the engine and wait until it has loaded its model; then watch it from a thread."""
        info = self._spawn()
        threading.Thread(target=self._watch, name="engine-supervisor", daemon=True).start()
        return info

    def stop(self) -> None:
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._directory, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _spawn(self) -> EngineInfo:
        Path(self.address).unlink(missing_ok=True)
        read_end, write_end = os.pipe()
        started = time.perf_counter()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workers.engine_host.server",
                "--address",
                self.address,
                "--ready-fd",
                str(write_end),
            ],
            stdin=subprocess.PIPE,
            pass_fds=(write_end,),
            env=OPENMP_WAITS | os.environ,
        )
        os.close(write_end)
        self._process = process
        assert process.stdin is not None
        process.stdin.write(self.authkey.hex().encode() + b"\n")
        process.stdin.close()
        answer = _read_answer(read_end, process, self._settings.model_load_timeout_s)
        if "error" in answer:
            if process.poll() is None:
                process.kill()
            process.wait()
            raise EngineStartFailed(answer["error"])
        info = EngineInfo(
            name=str(answer["name"]),
            sample_rate=int(str(answer["sample_rate"])),
            device=str(answer["device"]),
            max_batch=int(str(answer["max_batch"])),
        )
        log.info(
            "engine %s loaded on %s in %.1f s (process %d)",
            info.name,
            info.device,
            time.perf_counter() - started,
            process.pid,
        )
        return info

    def _watch(self) -> None:
        while not self._stopping.is_set():
            process = self._process
            assert process is not None
            try:
                process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                continue
            if self._stopping.is_set():
                return
            now = time.monotonic()
            self._restarts = [at for at in self._restarts if now - at < RESTART_WINDOW_S]
            if len(self._restarts) >= self._settings.engine_max_restarts:
                log.critical(
                    "the engine process died %d times within %.0f s; stopping this worker",
                    len(self._restarts) + 1,
                    RESTART_WINDOW_S,
                )
                self._on_give_up()
                return
            self._restarts.append(now)
            log.error("the engine process %d died (exit code %s); starting it again", process.pid, process.returncode)
            try:
                self._spawn()
            except EngineStartFailed as error:
                log.critical("the engine process could not start again (%s); stopping this worker", error)
                self._on_give_up()
                return


def _read_answer(read_end: int, process: subprocess.Popen[bytes], timeout_s: float) -> dict[str, object]:
    """The engine's one line on the readiness pipe, or an error when it exits or takes too long first."""
    deadline = time.monotonic() + timeout_s
    line = b""
    with os.fdopen(read_end, "rb") as pipe, selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"error": f"the engine process did not load its model within {timeout_s:g} s"}
            if not selector.select(min(remaining, 1.0)):
                continue
            data = os.read(pipe.fileno(), 4096)
            if not data:
                process.wait()
                return {"error": f"the engine process exited with code {process.returncode} before it was ready"}
            line += data
    answer: dict[str, object] = json.loads(line)
    return answer
