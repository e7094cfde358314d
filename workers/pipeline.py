"""Text in, encoded audio out, chunk by chunk: chunk, synthesize, resample, tempo, join, encode.

Encoded bytes are handed to `on_audio` as soon as each chunk is made, so a waiting caller can start playing before
the whole text is spoken. No Redis, no storage here: the job runner wires those around it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from tasks.spec import SynthesisSpec
from workers.audio.encoder import StreamEncoder
from workers.audio.join import ChunkJoiner
from workers.audio.loudness import normalize_loudness
from workers.audio.resample import resample
from workers.audio.tempo import change_tempo
from workers.engines.base import Audio, Engine, GenerationParams
from workers.text import split_into_chunks

log = logging.getLogger(__name__)

ENCODE_SLICE_S = 0.5


class SynthesisCancelled(Exception):
    """The job was cancelled between two chunks."""


@dataclass(frozen=True)
class SynthesisResult:
    audio: bytes
    sample_rate: int
    duration_s: float
    chunks: int
    engine_s: float
    """Time spent inside the engine: the model's share of the job, for the real-time factor."""


@dataclass(frozen=True)
class PipelineHooks:
    on_audio: Callable[[bytes], None]
    on_progress: Callable[[int, int], bool]
    """Told chunks done and total; answers whether to go on (False: the job was cancelled)."""


def generation_params(spec: SynthesisSpec) -> GenerationParams:
    return GenerationParams(**spec.sampling.model_dump(), language=spec.language)


class SynthesisPipeline:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    @property
    def output_sample_rate(self) -> int:
        return self._settings.output_sample_rate

    def run(self, spec: SynthesisSpec, reference_audio: Path | None, hooks: PipelineHooks) -> SynthesisResult:
        settings = self._settings
        rate = settings.output_sample_rate
        chunks = split_into_chunks(spec.text, settings.max_chunk_chars)
        if not chunks:
            raise ValueError("input has no text to speak")
        params = generation_params(spec)
        encoder = StreamEncoder(spec.response_format, rate)
        joiner = ChunkJoiner(rate, settings.join_pause_ms, settings.join_crossfade_ms)
        encoded = bytearray()
        samples_out = 0
        slice_length = round(rate * ENCODE_SLICE_S)
        engine_s = 0.0

        def emit(samples: Audio) -> None:
            nonlocal samples_out
            samples_out += len(samples)
            # Encode in short slices so the first bytes of a long chunk go out before the rest is encoded.
            for start in range(0, len(samples), slice_length):
                data = encoder.write(samples[start : start + slice_length])
                if data:
                    encoded.extend(data)
                    hooks.on_audio(data)

        keep_going = hooks.on_progress(0, len(chunks))
        for index, chunk in enumerate(chunks, start=1):
            if not keep_going:
                raise SynthesisCancelled
            started = time.perf_counter()
            audio = self._engine.synthesize(chunk, reference_audio, params)
            engine_s += time.perf_counter() - started
            emit(joiner.push(self._postprocess(audio, spec.speed)))
            keep_going = hooks.on_progress(index, len(chunks))
        emit(joiner.finish())
        tail = encoder.close()
        if tail:
            encoded.extend(tail)
            hooks.on_audio(tail)
        return SynthesisResult(bytes(encoded), rate, samples_out / rate, len(chunks), engine_s)

    def _postprocess(self, audio: Audio, speed: float) -> Audio:
        audio = resample(audio, self._engine.sample_rate, self._settings.output_sample_rate)
        if speed != 1.0:
            audio = change_tempo(audio, self._settings.output_sample_rate, speed)
        if self._settings.loudness_target_dbfs is not None:
            audio = normalize_loudness(audio, self._settings.loudness_target_dbfs)
        return audio
