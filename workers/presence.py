"""Keeps this worker process's presence key alive in Redis (see tasks/presence.py)."""

from __future__ import annotations

import logging
import os
import socket
import threading

import redis

from tasks.presence import PRESENCE_REFRESH_S, PRESENCE_TTL_S, WorkerState, presence_key

log = logging.getLogger(__name__)


class WorkerPresence:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._key = presence_key(f"{socket.gethostname()}:{os.getpid()}")
        self._state = WorkerState.IDLE
        self._changed = threading.Event()
        self._stopped = False

    def start(self) -> None:
        self._write()
        threading.Thread(target=self._refresh, name="worker-presence", daemon=True).start()

    def set(self, state: WorkerState) -> None:
        """Record the state; the presence thread writes it, so a job never waits on this."""
        self._state = state
        self._changed.set()

    def stop(self) -> None:
        self._stopped = True
        self._changed.set()
        self._redis.delete(self._key)

    def _refresh(self) -> None:
        while not self._stopped:
            self._changed.wait(PRESENCE_REFRESH_S)
            self._changed.clear()
            if not self._stopped:
                self._write()

    def _write(self) -> None:
        try:
            self._redis.set(self._key, self._state.value, ex=PRESENCE_TTL_S)
        except redis.RedisError as exc:
            log.warning("could not refresh worker presence: %s", exc)
