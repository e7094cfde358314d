"""What crosses the engine process's socket: plain, picklable messages (multiprocessing.connection pickles them).

Requests carry the child's own request ids; the engine process keys them by connection, so ids need only be unique
within one child.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.engines.base import ChunkRequest


@dataclass(frozen=True)
class EngineInfo:
    """Sent by the engine process to each client as it connects: the model is loaded and serving."""

    name: str
    sample_rate: int
    device: str
    max_batch: int


@dataclass(frozen=True)
class Submit:
    request: ChunkRequest


@dataclass(frozen=True)
class Cancel:
    request_id: str


@dataclass(frozen=True)
class Piece:
    request_id: str
    samples: bytes
    """float32 samples, native byte order."""
    final: bool


@dataclass(frozen=True)
class Failed:
    request_id: str
    message: str
    rejected: bool
    """The request cannot be served as asked (an EngineError: the caller's to fix), rather than the engine failing."""


ClientMessage = Submit | Cancel
EngineMessage = Piece | Failed
