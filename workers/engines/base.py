"""The engine interface every text-to-speech engine implements: many chunks in flight, audio out in pieces.

An engine holds its model for the life of its process (the engine process, workers/engine_host/) and is driven by
one loop: `submit` adds chunk requests at any time, `step` advances the work a little (one decode step of every
active row for ChatterBox Turbo, one whole chunk for engines that do not batch) and returns what is ready, `cancel`
drops a request between two steps. Each request's audio comes back as a stream of pieces in order, the last one
marked final, so callers can pass audio on before a chunk is finished. Joining, tempo and encoding happen outside.
Engines are synchronous and never run on an event loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from tasks.spec import Sampling

Audio = npt.NDArray[np.float32]
"""Mono float32 samples in [-1, 1]."""


class GenerationParams(Sampling):
    """What one engine request receives: the custom API's sampling parameters (with its defaults) and a language."""

    language: str | None = None


class EngineError(Exception):
    """A request the engine cannot serve (bad reference clip, unsupported language...).

    The message is shown to the caller, so it says what to change.
    """


@dataclass(frozen=True)
class ChunkRequest:
    """One chunk of text to speak."""

    id: str
    """Unique among the requests in flight in one engine."""
    text: str
    reference_audio: Path | None
    """The voice to speak in; None: the engine's built-in voice."""
    params: GenerationParams
    priority: int = 0
    """Lower goes first when rows wait for room in the batch: the chunk's index in its job, so that every job's
    first audio comes before anyone's tenth chunk."""
    stream: bool = False
    """Send the audio in pieces as it is made (engines that cannot send it whole, once done)."""


@dataclass(frozen=True)
class AudioPiece:
    request_id: str
    samples: Audio
    final: bool
    """The request's last piece: its audio is complete."""


@dataclass(frozen=True)
class RequestFailed:
    request_id: str
    error: Exception
    """An EngineError (the caller's to fix) or another exception (the engine's fault)."""


EngineOutput = AudioPiece | RequestFailed


class Engine(Protocol):
    name: str
    """Model name clients select, e.g. `chatterbox-turbo` or `espeak`."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def device(self) -> str: ...

    @property
    def max_batch(self) -> int:
        """How many requests advance together at each step (1: one at a time)."""
        ...

    def load(self) -> None:
        """Load weights and warm up. Called once per process, never in a prefork parent."""

    def submit(self, request: ChunkRequest) -> None:
        """Queue a request; it joins the work at the next step. Raises EngineError for one it cannot serve."""

    def cancel(self, request_id: str) -> None:
        """Drop a queued or running request; it produces no more output. Unknown ids are ignored."""

    @property
    def busy(self) -> bool:
        """Whether any submitted request is unfinished (so `step` has work)."""
        ...

    def step(self) -> list[EngineOutput]:
        """Advance the work and return the pieces and failures it produced."""
        ...

    def unload(self) -> None:
        """Release the model (and its accelerator memory)."""


def run_to_completion(engine: Engine, requests: Iterable[ChunkRequest]) -> dict[str, Audio]:
    """Submit the requests and step the engine until all are done: each request's whole audio, by id.

    The engine process runs its own loop; this drives an engine in the calling thread (warm-up, tools, tests).
    Raises the error of the first request that fails.
    """
    pieces: dict[str, list[Audio]] = {}
    for request in requests:
        engine.submit(request)
        pieces[request.id] = []
    done: set[str] = set()
    while engine.busy:
        for output in engine.step():
            if isinstance(output, RequestFailed):
                for request_id in pieces.keys() - done:
                    engine.cancel(request_id)
                raise output.error
            pieces[output.request_id].append(output.samples)
            if output.final:
                done.add(output.request_id)
    return {request_id: _joined(parts) for request_id, parts in pieces.items()}


def synthesize_one(
    engine: Engine, text: str, reference_audio: Path | None = None, params: GenerationParams | None = None
) -> Audio:
    """One chunk's whole audio, driving the engine in the calling thread (see run_to_completion)."""
    request = ChunkRequest("one", text, reference_audio, params or GenerationParams())
    return run_to_completion(engine, [request])["one"]


def _joined(parts: list[Audio]) -> Audio:
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, dtype=np.float32)
