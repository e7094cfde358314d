"""Requests waiting for room in an engine, served by priority (a chunk's index in its job), then first come."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(order=True)
class _Entry(Generic[T]):
    priority: int
    arrival: int
    request_id: str = field(compare=False)
    item: T = field(compare=False)


class WaitingRequests(Generic[T]):
    def __init__(self) -> None:
        self._heap: list[_Entry[T]] = []
        self._cancelled: set[str] = set()
        self._arrivals = itertools.count()

    def push(self, request_id: str, priority: int, item: T) -> None:
        self._cancelled.discard(request_id)
        heapq.heappush(self._heap, _Entry(priority, next(self._arrivals), request_id, item))

    def pop(self) -> T | None:
        """The next request to serve, or None when none waits."""
        while self._heap:
            entry = heapq.heappop(self._heap)
            if entry.request_id in self._cancelled:
                self._cancelled.discard(entry.request_id)
                continue
            return entry.item
        return None

    def cancel(self, request_id: str) -> bool:
        """Mark a waiting request dropped; False when it is not waiting here."""
        if any(entry.request_id == request_id for entry in self._heap) and request_id not in self._cancelled:
            self._cancelled.add(request_id)
            return True
        return False

    def __len__(self) -> int:
        return len(self._heap) - len(self._cancelled)
