"""A pool child's side of the engine process: submit a job's chunks, get their audio back in order.

Each child holds one connection. A job submits all its chunks at once, so the engine can batch them with each
other and with other jobs' chunks; pieces come back interleaved and are handed out chunk by chunk, in order. The
connection is opened when first needed and again after the engine process was lost.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection
from typing import NoReturn

import numpy as np

from workers.engine_host.messages import Cancel, EngineInfo, Failed, Piece, Submit
from workers.engines.base import Audio, ChunkRequest, EngineError

log = logging.getLogger(__name__)

CONNECT_RETRY_S = 0.2


class EngineLost(Exception):
    """The engine process went away (or could not be reached) while a job needed it; the job should run again."""


class EngineFailure(Exception):
    """The engine failed on a request through no fault of the request; the message is for the log."""


class Cancelled(Exception):
    """`keep_going` said stop while the job waited for audio."""


@dataclass(frozen=True)
class ChunkPiece:
    index: int
    """Which of the job's chunks this belongs to."""
    samples: Audio
    final: bool


class EngineClient:
    def __init__(self, address: str, authkey: bytes, *, connect_timeout_s: float) -> None:
        self._address = address
        self._authkey = authkey
        self._connect_timeout_s = connect_timeout_s
        self._connection: Connection | None = None
        self._info: EngineInfo | None = None

    @property
    def info(self) -> EngineInfo:
        """The engine being served (connecting first if needed)."""
        self._connected()
        assert self._info is not None
        return self._info

    def connect(self) -> EngineInfo:
        return self.info

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def stream(
        self, requests: Sequence[ChunkRequest], keep_going: Callable[[], bool], *, poll_s: float
    ) -> Iterator[ChunkPiece]:
        """Submit `requests` and yield their audio, the first request's pieces first, then the second's...

        `keep_going` is asked at least every `poll_s` while waiting; when it answers False the unfinished requests
        are cancelled and Cancelled is raised. Raises EngineError for a request the engine refused, EngineFailure
        when it failed on one, EngineLost when the engine process is gone. Whatever ends the iteration, requests
        still in flight are cancelled.
        """
        connection = self._connected()
        ids = [request.id for request in requests]
        unfinished = set(ids)
        buffered: dict[str, deque[Piece]] = defaultdict(deque)
        try:
            for request in requests:
                self._send(connection, Submit(request))
            for index, request_id in enumerate(ids):
                while request_id in unfinished or buffered[request_id]:
                    if not buffered[request_id]:
                        self._receive(connection, buffered, unfinished, keep_going, poll_s)
                        continue
                    piece = buffered[request_id].popleft()
                    yield ChunkPiece(index, np.frombuffer(piece.samples, dtype=np.float32), piece.final)
        finally:
            if unfinished and self._connection is not None:
                for request_id in unfinished:
                    self._send(self._connection, Cancel(request_id), lost_ok=True)

    def _receive(
        self,
        connection: Connection,
        buffered: dict[str, deque[Piece]],
        unfinished: set[str],
        keep_going: Callable[[], bool],
        poll_s: float,
    ) -> None:
        """Wait for one message for these requests (others', from an earlier job, are dropped)."""
        try:
            while not connection.poll(poll_s):
                if not keep_going():
                    raise Cancelled
            message = connection.recv()
        except (EOFError, OSError) as error:
            self._lost(error)
        if message.request_id not in unfinished:
            return
        if isinstance(message, Failed):
            unfinished.discard(message.request_id)
            raise EngineError(message.message) if message.rejected else EngineFailure(message.message)
        buffered[message.request_id].append(message)
        if message.final:
            unfinished.discard(message.request_id)

    def _send(self, connection: Connection, message: Submit | Cancel, *, lost_ok: bool = False) -> None:
        try:
            connection.send(message)
        except OSError as error:
            if not lost_ok:
                self._lost(error)
            self.close()

    def _lost(self, error: BaseException) -> NoReturn:
        self.close()
        raise EngineLost(f"the engine process is gone: {error}") from error

    def _connected(self) -> Connection:
        if self._connection is not None:
            return self._connection
        deadline = time.monotonic() + self._connect_timeout_s
        while True:
            try:
                connection = Client(self._address, family="AF_UNIX", authkey=self._authkey)
                info = connection.recv()
            except (FileNotFoundError, ConnectionRefusedError, EOFError, OSError) as error:
                if time.monotonic() > deadline:
                    raise EngineLost(f"no engine process answers at {self._address}: {error}") from error
                time.sleep(CONNECT_RETRY_S)
                continue
            if not isinstance(info, EngineInfo):
                connection.close()
                raise EngineLost(f"the engine process sent {type(info).__name__} instead of its description")
            self._connection, self._info = connection, info
            log.info("connected to engine %s (%s, batch of %d)", info.name, info.device, info.max_batch)
            return connection
