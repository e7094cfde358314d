"""Worker presence: each worker process keeps a short-lived key saying it is alive and whether it is busy.

The API reads these for `/health` and, with FAIL_FAST_WITHOUT_WORKER, to answer 503 instead of waiting when no
worker is there at all.
"""

from __future__ import annotations

from enum import StrEnum

PRESENCE_PREFIX = "worker:"
PRESENCE_TTL_S = 30
PRESENCE_REFRESH_S = 10


class WorkerState(StrEnum):
    IDLE = "idle"
    BUSY = "busy"


def presence_key(worker_id: str) -> str:
    return f"{PRESENCE_PREFIX}{worker_id}"
