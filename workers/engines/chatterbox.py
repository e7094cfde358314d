"""ChatterBox (Resemble AI, chatterbox-tts 0.1.7): Turbo, the original English model and the multilingual one.

torch and chatterbox are imported inside functions only, so importing this module stays cheap and torch-free
for the API and the CPU workers. What differs between the three models lives in one `Variant` object each; the
engine around them owns loading, the voice-conditionals cache and the work: Turbo's chunks decode together in one
continuously batched T3 (turbo_batch.py); the original and multilingual models, whose T3 runs classifier-free
guidance as a batch of two and (multilingual) an alignment analyser bound to one sequence, speak one chunk at a
time through the library's own `generate`.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib
import io
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from core.settings import ChatterboxVariant, Settings
from tasks.languages import MULTILINGUAL_LANGUAGES, primary_subtag
from tasks.models import CHATTERBOX_MODELS
from workers.engines.base import (
    Audio,
    AudioPiece,
    ChunkRequest,
    EngineError,
    EngineOutput,
    GenerationParams,
    RequestFailed,
    run_to_completion,
)
from workers.engines.waiting import WaitingRequests

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

CHATTERBOX_SAMPLE_RATE = 24000
TURBO_MIN_REFERENCE_SECONDS = 5.0
# The original model crashes on cfg_weight=0 in 0.1.7 (a batch-1/batch-2 size mismatch, chatterbox PR #278).
# 1e-4 still runs the guidance batch but its effect is nil, which is what 0 asks for.
STANDARD_MIN_CFG_WEIGHT = 1e-4
PKUSEG_DIR = "pkuseg"
"""A checkpoint directory's copy of spacy-pkuseg's model home, for offline multilingual deployments."""
# Long enough for the multilingual model, which fails on five text tokens or fewer (chatterbox #548).
WARM_UP_TEXT = "The model is loaded and ready to speak."


class ChatterboxModel(Protocol):
    """The part of a ChatterBox model object the engine uses."""

    sr: int
    conds: Any
    watermarker: Any
    t3: Any
    s3gen: Any
    tokenizer: Any

    def prepare_conditionals(self, wav_fpath: str, **kwargs: Any) -> None: ...

    def generate(self, text: str, **kwargs: Any) -> torch.Tensor: ...


class _TurboModel(ChatterboxModel, Protocol):
    norm_loudness: Callable[..., Any]


ModelLoader = Callable[[str], ChatterboxModel]
"""Builds the model on a device ("cuda", "mps", "cpu"). Tests pass a stand-in."""


class NoWatermark:
    """Stands in for Perth's watermarker when `chatterbox_watermark` is off: returns the audio unchanged."""

    def apply_watermark(self, wav: npt.NDArray[np.float32], sample_rate: int) -> npt.NDArray[np.float32]:
        return wav


@dataclass(frozen=True)
class Variant:
    """One ChatterBox model: where its class lives and the keywords its methods accept.

    The base class holds what the English-only models share; subclasses override their model's quirks.
    """

    setting: ChatterboxVariant
    model_name: str
    module: str
    class_name: str

    def language_for(self, params: GenerationParams, configured_language: str) -> str | None:
        """The `language_id` to pass to `generate`; None for models that take none."""
        if params.language and primary_subtag(params.language) != "en":
            raise EngineError(
                f"{self.model_name} speaks English only; use chatterbox-multilingual for {params.language!r}"
            )
        return None

    def conditionals_kwargs(self, params: GenerationParams) -> dict[str, object]:
        """Keywords for `prepare_conditionals`; they are part of the conditionals' cache key."""
        return {"exaggeration": params.exaggeration}

    def generate_kwargs(self, params: GenerationParams, language: str | None) -> dict[str, object]:
        """Keywords for `generate`, apart from the text; never `audio_prompt_path`."""
        raise NotImplementedError

    def check_reference(self, reference_audio: Path) -> None:
        """Refuse a reference clip the model cannot use, before the model trips over it."""

    def adapt(self, model: ChatterboxModel) -> None:
        """Patch a freshly loaded model."""

    def after_generate(self, model: ChatterboxModel) -> None:
        """Undo state `generate` leaves behind."""

    def explain_failure(self, error: Exception, text: str) -> EngineError | None:
        """A caller-facing error for a known failure of this model's `generate`; None for anything else."""
        return None

    def spoke_nothing(self, error: Exception) -> bool:
        """Whether `generate` failed because T3 produced no speech token at all.

        0.1.7's original and multilingual generate pass an empty token sequence to S3Gen, whose F0 predictor then
        fails ("Kernel size can't be greater than actual input size"); Turbo appends three silence tokens and
        never gets there. The chunk is then silence, as Turbo's would be.
        """
        return isinstance(error, RuntimeError) and "Kernel size can't be greater than actual input size" in str(error)


@dataclass(frozen=True)
class TurboVariant(Variant):
    def conditionals_kwargs(self, params: GenerationParams) -> dict[str, object]:
        # Turbo has no emotion input; loudness normalisation of the reference is its only option here.
        return {"norm_loudness": params.norm_loudness}

    def generate_kwargs(self, params: GenerationParams, language: str | None) -> dict[str, object]:
        return {
            "temperature": params.temperature,
            "top_k": params.top_k,
            "top_p": params.top_p,
            "repetition_penalty": params.repetition_penalty,
            "min_p": params.min_p,
            "exaggeration": params.exaggeration,
            "cfg_weight": params.cfg_weight,
            "norm_loudness": params.norm_loudness,
        }

    def check_reference(self, reference_audio: Path) -> None:
        seconds = _audio_seconds(reference_audio)
        if seconds <= TURBO_MIN_REFERENCE_SECONDS:
            raise EngineError(
                f"{self.model_name} needs a reference voice clip longer than "
                f"{TURBO_MIN_REFERENCE_SECONDS:g} seconds; this one lasts {seconds:.2f} s"
            )

    def adapt(self, model: ChatterboxModel) -> None:
        # With numpy 2, norm_loudness scales the float32 reference by an np.float64 gain and returns float64,
        # which later fails with "expected scalar type Double but found Float" (chatterbox #499).
        turbo = cast(_TurboModel, model)
        normalise = turbo.norm_loudness

        def norm_loudness_float32(*args: Any, **kwargs: Any) -> npt.NDArray[np.float32]:
            return np.asarray(normalise(*args, **kwargs), dtype=np.float32)

        turbo.norm_loudness = norm_loudness_float32


@dataclass(frozen=True)
class StandardVariant(Variant):
    def generate_kwargs(self, params: GenerationParams, language: str | None) -> dict[str, object]:
        return {
            "repetition_penalty": params.repetition_penalty,
            "min_p": params.min_p,
            "top_p": params.top_p,
            "exaggeration": params.exaggeration,
            "cfg_weight": max(params.cfg_weight, STANDARD_MIN_CFG_WEIGHT),
            "temperature": params.temperature,
        }


@dataclass(frozen=True)
class MultilingualVariant(Variant):
    def language_for(self, params: GenerationParams, configured_language: str) -> str | None:
        requested = params.language or configured_language
        if not requested:
            raise EngineError(f"{self.model_name} needs a language; set `language` (one of {_languages()})")
        language = primary_subtag(requested)
        if language not in MULTILINGUAL_LANGUAGES:
            raise EngineError(f"{self.model_name} does not speak {requested!r}; it speaks {_languages()}")
        return language

    def generate_kwargs(self, params: GenerationParams, language: str | None) -> dict[str, object]:
        return {
            "language_id": language,
            "exaggeration": params.exaggeration,
            "cfg_weight": params.cfg_weight,
            "temperature": params.temperature,
            "repetition_penalty": params.repetition_penalty,
            "min_p": params.min_p,
            "top_p": params.top_p,
        }

    def explain_failure(self, error: Exception, text: str) -> EngineError | None:
        # 0.1.7's AlignmentStreamAnalyzer reduces over an empty tensor when the text has 5 tokens or fewer
        # (chatterbox #548): say so instead of failing with an internal error.
        if isinstance(error, IndexError) and "non-zero size" in str(error):
            return EngineError(f"{self.model_name} cannot speak text this short ({text!r}); add a few words")
        return None

    def after_generate(self, model: ChatterboxModel) -> None:
        # 0.1.7's AlignmentStreamAnalyzer adds forward hooks on every generate and never removes them:
        # generation slows, and on CPU/MPS the audio collapses after the first call (chatterbox #352, #504).
        for layer in model.t3.tfmr.layers:
            layer.self_attn._forward_hooks.clear()


VARIANTS: Mapping[ChatterboxVariant, Variant] = {
    "turbo": TurboVariant("turbo", CHATTERBOX_MODELS["turbo"], "chatterbox.tts_turbo", "ChatterboxTurboTTS"),
    "standard": StandardVariant("standard", CHATTERBOX_MODELS["standard"], "chatterbox.tts", "ChatterboxTTS"),
    "multilingual": MultilingualVariant(
        "multilingual", CHATTERBOX_MODELS["multilingual"], "chatterbox.mtl_tts", "ChatterboxMultilingualTTS"
    ),
}


def select_device() -> str:
    """The best accelerator present: cuda, then mps, then cpu."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def model_constructor_call(checkpoint_dir: Path | None, device: str) -> tuple[str, dict[str, object]]:
    """The classmethod that builds the model, and its keywords: a local checkpoint, else the HF cache."""
    # The device goes in as a str: from_local compares it with "cpu"/"mps" to pick torch.load's map_location.
    if checkpoint_dir is not None:
        return "from_local", {"ckpt_dir": str(checkpoint_dir), "device": device}
    return "from_pretrained", {"device": device}


def load_pretrained_model(variant: Variant, checkpoint_dir: Path | None, device: str) -> ChatterboxModel:
    if checkpoint_dir is not None:
        # Everything is local: the multilingual tokenizer's Cangjie download is then refused at once instead of
        # timing out, and a checkpoint's own `pkuseg/` (the Chinese segmenter's model, which it builds eagerly and
        # would download otherwise) is used when the deployment names no PKUSEG_HOME.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if (checkpoint_dir / PKUSEG_DIR).is_dir():
            os.environ.setdefault("PKUSEG_HOME", str(checkpoint_dir / PKUSEG_DIR))
    model_class = getattr(importlib.import_module(variant.module), variant.class_name)
    method, kwargs = model_constructor_call(checkpoint_dir, device)
    model: ChatterboxModel = getattr(model_class, method)(**kwargs)
    return model


_ConditionalsKey = tuple[str, str, tuple[tuple[str, object], ...]]
"""(variant, sha256 of the reference clip, the keywords passed to prepare_conditionals)."""


class _ConditionalsCache:
    """A bounded least-recently-used map of prepared conditionals; the engine's lock guards it."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[_ConditionalsKey, Any] = OrderedDict()

    def get(self, key: _ConditionalsKey) -> Any:
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        return None

    def put(self, key: _ConditionalsKey, value: Any) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


SILENCE_SECONDS = 0.12
"""What a chunk that T3 ends at once sounds like: Turbo's three silence tokens."""


class ChatterboxEngine:
    """One ChatterBox model per process, with voice conditionals cached per clip.

    Turbo's requests decode together (TurboBatch); the other variants speak one request per step through the
    library's `generate`. Conditionals are prepared once per (variant, reference content, keywords of
    `prepare_conditionals`); no reference means the checkpoint's built-in voice. The library prints progress to
    stdout and stderr; that goes to this module's logger at DEBUG instead of the worker's log.
    """

    name: str

    def __init__(self, settings: Settings, *, load_model: ModelLoader | None = None) -> None:
        self._variant = VARIANTS[settings.chatterbox_variant]
        self.name = self._variant.model_name
        self._settings = settings
        self._device_setting = settings.chatterbox_device
        self._watermark = settings.chatterbox_watermark
        self._configured_language = settings.chatterbox_language
        self._load_model = load_model or partial(
            load_pretrained_model, self._variant, settings.chatterbox_checkpoint_dir
        )
        self._conditionals = _ConditionalsCache(settings.conditionals_cache_size)
        self._model: ChatterboxModel | None = None
        self._builtin_conds: Any = None
        self._device: str | None = None
        self._batch: Any = None
        """Turbo's TurboBatch; None for the variants that speak one request at a time."""
        self._waiting: WaitingRequests[tuple[ChunkRequest, Any]] = WaitingRequests()

    @property
    def sample_rate(self) -> int:
        return self._model.sr if self._model is not None else CHATTERBOX_SAMPLE_RATE

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = select_device() if self._device_setting == "auto" else self._device_setting
        return self._device

    @property
    def max_batch(self) -> int:
        return int(self._batch.slots) if self._batch is not None else 1

    @property
    def busy(self) -> bool:
        return len(self._waiting) > 0 or (self._batch is not None and bool(self._batch.busy))

    @property
    def model(self) -> ChatterboxModel:
        """The library's model object (ChatterboxTurboTTS, ChatterboxTTS or ChatterboxMultilingualTTS)."""
        return self._loaded_model()

    @property
    def batch(self) -> Any:
        """Turbo's TurboBatch (the rows decoding together); None for the variants that do not batch."""
        return self._batch

    def conditionals(self, reference_audio: Path | None, params: GenerationParams) -> Any:
        """The voice conditionals a request with this reference and these parameters speaks with (cached)."""
        reference = None if reference_audio is None else (reference_audio, _file_digest(reference_audio))
        with library_output_to_debug():
            return self._conditionals_for(self._loaded_model(), reference, params)

    def load(self) -> None:
        if self._model is not None:
            return
        started = time.perf_counter()
        if self._settings.engine_threads is not None:
            import torch

            torch.set_num_threads(self._settings.engine_threads)
        with library_output_to_debug():
            model = self._load_model(self.device)
        self._variant.adapt(model)
        if not self._watermark:
            model.watermarker = NoWatermark()
        # Kept aside, since preparing a reference replaces model.conds. The standard and multilingual generate
        # rebuild its `t3` part in place when exaggeration changes, on every call, so sharing it is safe.
        self._builtin_conds = model.conds
        self._model = model
        if self._variant.setting == "turbo":
            import torch

            from workers.engines.turbo_batch import TurboBatch, TurboLimits

            settings = self._settings
            limits = TurboLimits(
                max_batch=settings.engine_max_batch,
                max_new_tokens=settings.engine_max_speech_tokens,
                stream_tokens=settings.stream_tokens,
                # Byte-level BPE gives at most a token per byte; two a character covers text far beyond English.
                max_text_tokens=2 * settings.max_chunk_chars,
                kv_cache_bytes=settings.engine_kv_cache_mb << 20,
                vocoder_batch=settings.engine_vocoder_batch
                or (1 if self.device == "cpu" else settings.engine_max_batch),
                vocoder_threads=torch.get_num_threads() if self.device == "cpu" else 1,
            )
            self._batch = TurboBatch(model, limits, model.watermarker)
        logger.info("loaded %s on %s in %.1f s", self.name, self.device, time.perf_counter() - started)
        self._warm_up()

    def submit(self, request: ChunkRequest) -> None:
        model = self._loaded_model()
        params = request.params
        language = self._variant.language_for(params, self._configured_language)
        conds = self.conditionals(request.reference_audio, params)
        if self._batch is None:
            self._waiting.push(request.id, request.priority, (request, (conds, language)))
            return
        from workers.engines.turbo_batch import turbo_row

        self._batch.add(turbo_row(model, request, conds))

    def cancel(self, request_id: str) -> None:
        if not self._waiting.cancel(request_id) and self._batch is not None:
            self._batch.cancel(request_id)

    def step(self) -> list[EngineOutput]:
        with library_output_to_debug():
            if self._batch is not None:
                outputs: list[EngineOutput] = self._batch.step()
                return outputs
            waiting = self._waiting.pop()
            if waiting is None:
                return []
            request, (conds, language) = waiting
            try:
                return [AudioPiece(request.id, self._generate(request, conds, language), final=True)]
            except EngineError as error:
                return [RequestFailed(request.id, error)]
            except Exception as error:
                logger.exception("%s failed on request %s", self.name, request.id)
                return [RequestFailed(request.id, error)]

    def unload(self) -> None:
        self._model = None
        self._builtin_conds = None
        if self._batch is not None:
            self._batch.close()
        self._batch = None
        self._conditionals.clear()
        gc.collect()
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def _generate(self, request: ChunkRequest, conds: Any, language: str | None) -> Audio:
        """One request through the library's own generate (the variants that do not batch)."""
        import torch

        model = self._loaded_model()
        with torch.inference_mode():
            model.conds = conds
            try:
                wav = model.generate(request.text, **self._variant.generate_kwargs(request.params, language))
            except Exception as error:
                if self._variant.spoke_nothing(error):
                    logger.info("request %s: %s spoke no token; the chunk is silence", request.id, self.name)
                    return np.zeros(round(SILENCE_SECONDS * self.sample_rate), dtype=np.float32)
                explained = self._variant.explain_failure(error, request.text)
                if explained is None:
                    raise
                raise explained from error
            finally:
                self._variant.after_generate(model)
        samples: Audio = wav.squeeze(0).numpy().astype(np.float32)
        return samples

    def _loaded_model(self) -> ChatterboxModel:
        if self._model is None:
            raise RuntimeError(f"{self.name} is not loaded; call load() first")
        return self._model

    def _warm_up(self) -> None:
        if self._builtin_conds is None:
            logger.info("%s has no built-in voice; skipping the warm-up", self.name)
            return
        started = time.perf_counter()
        # In English, which every variant speaks, whatever language the configuration names.
        run_to_completion(self, [ChunkRequest("warm-up", WARM_UP_TEXT, None, GenerationParams(language="en"))])
        logger.info("%s warmed up in %.1f s", self.name, time.perf_counter() - started)

    def _conditionals_for(
        self, model: ChatterboxModel, reference: tuple[Path, str] | None, params: GenerationParams
    ) -> Any:
        if reference is None:
            if self._builtin_conds is None:
                raise EngineError(f"{self.name} has no built-in voice in this checkpoint; choose a voice")
            return self._builtin_conds
        reference_audio, digest = reference
        kwargs = self._variant.conditionals_kwargs(params)
        key: _ConditionalsKey = (self._variant.setting, digest, tuple(sorted(kwargs.items())))
        conds = self._conditionals.get(key)
        if conds is None:
            import torch

            self._variant.check_reference(reference_audio)
            started = time.perf_counter()
            with torch.inference_mode():
                model.prepare_conditionals(str(reference_audio), **kwargs)
            conds = model.conds
            self._conditionals.put(key, conds)
            logger.info(
                "prepared voice conditionals for %s (%s) in %.2f s",
                reference_audio.name,
                digest[:12],
                time.perf_counter() - started,
            )
        return conds


class _DebugLog(io.TextIOBase):
    """A text stream whose lines go to this module's logger at DEBUG."""

    def __init__(self) -> None:
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._partial + text).replace("\r", "\n").split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                logger.debug("chatterbox: %s", line.strip())
        return len(text)


@contextlib.contextmanager
def library_output_to_debug() -> Iterator[None]:
    """The library's prints ("S3 Token -> Mel Inference...") and tqdm bars, logged at DEBUG instead of reaching
    the worker's stdout and stderr (Celery would log them as warnings)."""
    sink = _DebugLog()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def _languages() -> str:
    return ", ".join(sorted(MULTILINGUAL_LANGUAGES))


def _file_digest(path: Path) -> str:
    try:
        with path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except FileNotFoundError as error:
        raise EngineError(f"the reference voice clip {path.name} is missing") from error


def _audio_seconds(path: Path) -> float:
    import av  # here, not at the top: only a reference clip needs it

    try:
        with av.open(str(path)) as container:
            return sum(
                (frame.samples / frame.sample_rate for frame in container.decode(audio=0)),
                start=0.0,
            )
    except (av.error.FFmpegError, IndexError) as error:
        raise EngineError(f"the reference voice clip {path.name} could not be decoded: {error}") from error
