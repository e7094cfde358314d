"""Text in, encoded audio out, chunk by chunk: chunk, synthesize, resample, tempo, join, encode.

All of a job's chunks go to the engine process at once, so they decode together (with other jobs' chunks) while
this process post-processes and encodes the ones already done. Encoded bytes are handed to `on_audio` as soon as
each chunk is made, so a waiting caller can start playing before the whole text is spoken. No Redis, no storage
here: the job runner wires those around it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.settings import Settings
from tasks.spec import SynthesisSpec
from text.front import engine_chunks
from workers.audio.encoder import StreamEncoder
from workers.audio.join import ChunkJoiner
from workers.audio.loudness import normalize_loudness
from workers.audio.piecewise import FilterChain, PiecewiseFilter
from workers.audio.resample import Resampler
from workers.audio.tempo import TempoChanger
from workers.engine_host.client import Cancelled, EngineClient
from workers.engines.base import Audio, ChunkRequest, GenerationParams

log = logging.getLogger(__name__)

ENCODE_SLICE_S = 0.5
CANCEL_POLL_S = 0.25
"""How often a job waiting for audio asks whether it was cancelled: a cancel takes effect within this."""


class SynthesisCancelled(Exception):
    """The job was cancelled while it was being synthesized."""


@dataclass(frozen=True)
class SynthesisResult:
    audio: bytes
    sample_rate: int
    duration_s: float
    chunks: int
    engine_s: float
    """Time spent waiting for the engine's audio: the model's share of the job, for the real-time factor."""


@dataclass(frozen=True)
class PipelineHooks:
    on_audio: Callable[[bytes], None]
    """Encoded audio, as it is made."""
    on_samples: Callable[[Audio], None]
    """The same audio before encoding (at most ENCODE_SLICE_S at a time), as it is made."""
    on_progress: Callable[[int, int], bool]
    """Told chunks done and total; answers whether to go on (False: the job was cancelled)."""
    keep_going: Callable[[], bool]
    """Asked every CANCEL_POLL_S while waiting for the engine; False: the job was cancelled."""


def generation_params(spec: SynthesisSpec) -> GenerationParams:
    return GenerationParams(**spec.sampling.model_dump(), language=spec.language)


class SynthesisPipeline:
    def __init__(self, engine: EngineClient, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    @property
    def output_sample_rate(self) -> int:
        return self._settings.output_sample_rate

    def run(
        self, spec: SynthesisSpec, reference_audio: Path | None, hooks: PipelineHooks, *, request_prefix: str
    ) -> SynthesisResult:
        """`request_prefix` names this run's engine requests (unique per job attempt)."""
        settings = self._settings
        rate = settings.output_sample_rate
        chunks = engine_chunks(spec, settings)
        if not chunks:
            raise ValueError("input has no text to speak")
        params = generation_params(spec)
        # Streaming costs the engine more (S3Gen runs again for each piece): only when someone hears it live.
        requests = [
            ChunkRequest(f"{request_prefix}:{index}", chunk, reference_audio, params, index, stream=spec.heard_live)
            for index, chunk in enumerate(chunks)
        ]
        engine_rate = self._engine.info.sample_rate
        encoder = StreamEncoder(spec.response_format, rate)
        joiner = ChunkJoiner(rate, settings.join_pause_ms, settings.join_crossfade_ms)
        encoded = bytearray()
        samples_out = 0
        slice_length = round(rate * ENCODE_SLICE_S)
        post_s = 0.0

        def emit(samples: Audio) -> None:
            nonlocal samples_out
            samples_out += len(samples)
            # Encode in short slices so the first bytes of a long chunk go out before the rest is encoded.
            for start in range(0, len(samples), slice_length):
                hooks.on_samples(samples[start : start + slice_length])
                data = encoder.write(samples[start : start + slice_length])
                if data:
                    encoded.extend(data)
                    hooks.on_audio(data)

        if not hooks.on_progress(0, len(chunks)):
            raise SynthesisCancelled
        started = time.perf_counter()
        chunk = _ChunkAudio(settings, engine_rate, spec.speed)
        try:
            for piece in self._engine.stream(requests, hooks.keep_going, poll_s=CANCEL_POLL_S):
                post_started = time.perf_counter()
                started_before = chunk.started
                emit(joiner.push(chunk.add(piece.samples, final=piece.final), continues=started_before))
                post_s += time.perf_counter() - post_started
                if not piece.final:
                    continue
                chunk = _ChunkAudio(settings, engine_rate, spec.speed)
                if not hooks.on_progress(piece.index + 1, len(chunks)):
                    raise SynthesisCancelled
        except Cancelled as cancelled:
            raise SynthesisCancelled from cancelled
        engine_s = time.perf_counter() - started - post_s
        emit(joiner.finish())
        tail = encoder.close()
        if tail:
            encoded.extend(tail)
            hooks.on_audio(tail)
        return SynthesisResult(bytes(encoded), rate, samples_out / rate, len(chunks), engine_s)


class _ChunkAudio:
    """One chunk's pieces on their way to the joiner: resampled and tempo-changed as they come (the filters keep
    their state from piece to piece), or, with loudness normalisation, which needs the whole chunk's level, held
    until the chunk is complete."""

    def __init__(self, settings: Settings, engine_rate: int, speed: float) -> None:
        rate = settings.output_sample_rate
        filters: list[PiecewiseFilter] = []
        if engine_rate != rate:
            filters.append(Resampler(engine_rate, rate))
        if speed != 1.0:
            filters.append(TempoChanger(rate, speed))
        self._filters = FilterChain(filters)
        self._loudness_target = settings.loudness_target_dbfs
        self._held: list[Audio] = []
        self.started = False
        """Whether some of the chunk has gone to the joiner (what follows continues it)."""

    def add(self, samples: Audio, *, final: bool) -> Audio:
        shaped = self._filters.push(samples)
        if final:
            shaped = np.concatenate([shaped, self._filters.finish()])
        if self._loudness_target is not None:
            self._held.append(shaped)
            if not final:
                return _EMPTY
            shaped = normalize_loudness(np.concatenate(self._held), self._loudness_target)
        self.started = self.started or shaped.size > 0
        return shaped


_EMPTY: Audio = np.zeros(0, dtype=np.float32)
