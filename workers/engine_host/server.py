"""The engine process: one per GPU, started as a fresh interpreter (never forked) by the worker's parent, the only
process that loads the model and touches the accelerator: `python -m workers.engine_host.server --address PATH
--ready-fd FD`, with the socket's key on stdin.

It loads the engine, then serves the worker's pool children over a Unix socket: each child connects once, submits
chunk requests and cancels, and receives its requests' audio pieces. One loop owns the engine: take every message
that has arrived, step the engine once, send what it produced, and again; it blocks only when nothing is in flight.
A child that goes away (killed, replaced after a hard time limit) has its requests cancelled at once, so its rows
leave the batch at the next step.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection, Listener
from typing import Any

from core.logs import configure_logging
from core.settings import Settings, get_settings
from workers.engine_host.messages import Cancel, EngineInfo, Failed, Piece, Submit
from workers.engines.base import AudioPiece, ChunkRequest, Engine, EngineError, EngineOutput
from workers.engines.factory import create_engine

log = logging.getLogger(__name__)

IDLE_WAIT_S = 1.0
PARENT_CHECK_S = 1.0


@dataclass(frozen=True)
class _Connected:
    connection: Connection


@dataclass(frozen=True)
class _Disconnected:
    pass


_Inbound = tuple[int, Any]
"""(connection id, a client message or _Connected / _Disconnected)."""


def run(settings: Settings, address: str, authkey: bytes, ready: Any) -> None:
    """Load the engine, report on `ready` (one JSON line: the EngineInfo, or {"error": ...}), then serve."""
    configure_logging(settings.log_level)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="engine-parent", daemon=True).start()
    try:
        engine = create_engine(settings)
        engine.load()
        listener = Listener(address, family="AF_UNIX", authkey=authkey)
    except Exception as error:
        log.critical("could not load the %s engine", settings.tts_engine, exc_info=True)
        ready.write(json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n")
        raise SystemExit(1) from error
    info = EngineInfo(engine.name, engine.sample_rate, engine.device, engine.max_batch)
    log.info("engine %s serving on %s (%s, batch of %d)", info.name, address, info.device, info.max_batch)
    ready.write(json.dumps(asdict(info)) + "\n")
    ready.close()
    EngineServer(engine, listener, info).serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="The engine process of a synthesis worker.")
    parser.add_argument("--address", required=True, help="Unix socket path to serve on")
    parser.add_argument("--ready-fd", type=int, required=True, help="file descriptor to report readiness on")
    args = parser.parse_args()
    authkey = bytes.fromhex(sys.stdin.readline().strip())
    with os.fdopen(args.ready_fd, "w") as ready:
        run(get_settings(), args.address, authkey, ready)


class EngineServer:
    def __init__(self, engine: Engine, listener: Listener, info: EngineInfo) -> None:
        self._engine = engine
        self._listener = listener
        self._info = info
        self._inbox: queue.Queue[_Inbound] = queue.Queue()
        self._connections: dict[int, Connection] = {}
        self._requests: dict[str, tuple[int, str]] = {}
        """Engine request id -> (connection id, the client's own request id)."""

    def serve_forever(self) -> None:
        threading.Thread(target=self._accept, name="engine-accept", daemon=True).start()
        while True:
            self._take_messages(wait=not self._engine.busy)
            if self._engine.busy:
                for output in self._engine.step():
                    self._deliver(output)

    def _accept(self) -> None:
        connection_ids = iter(range(1, 1 << 62))
        while True:
            try:
                connection = self._listener.accept()
            except (OSError, EOFError) as error:  # a client that failed the handshake
                log.warning("refused an engine client: %s", error)
                continue
            connection_id = next(connection_ids)
            connection.send(self._info)
            self._inbox.put((connection_id, _Connected(connection)))
            threading.Thread(
                target=self._read, args=(connection_id, connection), name=f"engine-client-{connection_id}", daemon=True
            ).start()

    def _read(self, connection_id: int, connection: Connection) -> None:
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                self._inbox.put((connection_id, _Disconnected()))
                return
            self._inbox.put((connection_id, message))

    def _take_messages(self, *, wait: bool) -> None:
        try:
            inbound = self._inbox.get(timeout=IDLE_WAIT_S) if wait else self._inbox.get_nowait()
        except queue.Empty:
            return
        while True:
            self._handle(*inbound)
            try:
                inbound = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, connection_id: int, message: Any) -> None:
        match message:
            case _Connected(connection):
                self._connections[connection_id] = connection
            case _Disconnected():
                self._drop(connection_id)
            case Submit(request):
                self._submit(connection_id, request)
            case Cancel(request_id):
                engine_id = _engine_id(connection_id, request_id)
                if self._requests.pop(engine_id, None) is not None:
                    self._engine.cancel(engine_id)
            case _:
                log.warning("engine client %d sent %r; ignored", connection_id, type(message).__name__)

    def _submit(self, connection_id: int, request: ChunkRequest) -> None:
        engine_id = _engine_id(connection_id, request.id)
        try:
            self._engine.submit(replace(request, id=engine_id))
        except EngineError as error:
            self._send(connection_id, Failed(request.id, str(error), rejected=True))
            return
        except Exception as error:
            log.exception("request %s could not be submitted", request.id)
            self._send(connection_id, Failed(request.id, f"{type(error).__name__}: {error}", rejected=False))
            return
        self._requests[engine_id] = (connection_id, request.id)

    def _deliver(self, output: EngineOutput) -> None:
        owner = self._requests.get(output.request_id)
        if owner is None:
            return  # cancelled, or its client has gone
        connection_id, request_id = owner
        if isinstance(output, AudioPiece):
            message: Piece | Failed = Piece(
                request_id, output.samples.astype("float32", copy=False).tobytes(), output.final
            )
            done = output.final
        else:
            rejected = isinstance(output.error, EngineError)
            message = Failed(request_id, str(output.error) if rejected else _describe(output.error), rejected)
            done = True
        if done:
            del self._requests[output.request_id]
        self._send(connection_id, message)

    def _send(self, connection_id: int, message: Piece | Failed) -> None:
        connection = self._connections.get(connection_id)
        if connection is None:
            return
        try:
            connection.send(message)
        except OSError:
            self._drop(connection_id)

    def _drop(self, connection_id: int) -> None:
        connection = self._connections.pop(connection_id, None)
        if connection is not None:
            connection.close()
        orphans = [engine_id for engine_id, (owner, _) in self._requests.items() if owner == connection_id]
        for engine_id in orphans:
            del self._requests[engine_id]
            self._engine.cancel(engine_id)
        if orphans:
            log.info("engine client %d went away; cancelled its %d requests", connection_id, len(orphans))


def _exit_with_parent(parent: int) -> None:
    """Never outlive the worker that started this process (a SIGKILLed parent cannot stop it): an orphan would
    hold the GPU's memory for nothing."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    log.warning("the worker process %d is gone; the engine process exits", parent)
    os._exit(0)


def _engine_id(connection_id: int, request_id: str) -> str:
    return f"{connection_id}/{request_id}"


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


if __name__ == "__main__":
    # tqdm reads this when first imported, which importing torch does; its progress bars are noise in a service.
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
