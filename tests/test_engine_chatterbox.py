"""The ChatterBox adapter, checked two ways, since the weights (several GB from Hugging Face) cannot exist here.

1. Against the installed chatterbox-tts package's source, parsed with `ast` and never imported (its imports
   need librosa, transformers and more, which this environment leaves out on purpose): every class the adapter
   loads and every keyword it passes must exist there.
2. Around a stand-in for the GPU model, injected through the engine's `load_model` hook: caching, locking,
   inference mode, the per-variant fixes and the output format.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from core.settings import ChatterboxVariant, Settings
from workers.engines.base import EngineError, GenerationParams
from workers.engines.chatterbox import (
    MULTILINGUAL_LANGUAGES,
    STANDARD_MIN_CFG_WEIGHT,
    TURBO_MIN_REFERENCE_SECONDS,
    VARIANTS,
    ChatterboxEngine,
    NoWatermark,
    Variant,
    model_constructor_call,
    select_device,
)
from workers.engines.factory import create_engine, model_name

ALL_VARIANTS: list[ChatterboxVariant] = ["turbo", "standard", "multilingual"]
SAMPLE_PARAMS = [
    GenerationParams(),
    GenerationParams(temperature=0.5, top_k=50, top_p=0.9, cfg_weight=0.4, exaggeration=0.7, language="en"),
    GenerationParams(norm_loudness=False, min_p=0.05, repetition_penalty=2.0),
]


# --- 1. The installed package's real signatures ----------------------------------------------------------


@cache
def package_dir() -> Path:
    spec = importlib.util.find_spec("chatterbox")  # finds the package without importing it
    assert spec is not None and spec.submodule_search_locations, "chatterbox-tts is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def parsed_module(module: str) -> ast.Module:
    relative = module.removeprefix("chatterbox.").replace(".", "/") + ".py"
    return ast.parse((package_dir() / relative).read_text(encoding="utf-8"))


def class_def(variant: Variant) -> ast.ClassDef:
    for node in parsed_module(variant.module).body:
        if isinstance(node, ast.ClassDef) and node.name == variant.class_name:
            return node
    raise AssertionError(f"{variant.module} defines no class {variant.class_name}")


def method(cls: ast.ClassDef, name: str) -> ast.FunctionDef:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise AssertionError(f"{cls.name} has no method {name}")


@dataclass(frozen=True)
class Parameters:
    names: list[str]
    """In order, without self/cls."""
    required: set[str]


def parameters(function: ast.FunctionDef) -> Parameters:
    arguments = function.args
    positional = [argument.arg for argument in arguments.posonlyargs + arguments.args][1:]
    without_default = positional[: len(positional) - len(arguments.defaults)]
    keyword_only = [argument.arg for argument in arguments.kwonlyargs]
    required_keywords = {
        argument.arg
        for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
        if default is None
    }
    return Parameters(positional + keyword_only, set(without_default) | required_keywords)


def assert_call_fits(function: ast.FunctionDef, positional: list[str], keywords: set[str]) -> None:
    """A call with `positional` arguments first, then `keywords`, binds to `function` with nothing missing."""
    signature = parameters(function)
    assert signature.names[: len(positional)] == positional
    assert keywords <= set(signature.names), f"{function.name} has no {keywords - set(signature.names)}"
    assert signature.required - set(positional) <= keywords, f"{function.name} also needs {signature.required}"


def is_classmethod(function: ast.FunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "classmethod" for d in function.decorator_list)


def method_calls(function: ast.FunctionDef) -> Iterator[tuple[ast.Attribute, ast.Call]]:
    """Every `something.name(...)` call in `function`, as (the `something.name` part, the call)."""
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            yield node.func, node


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=lambda variant: variant.setting)
def test_generate_accepts_exactly_what_the_adapter_passes(variant: Variant) -> None:
    generate = method(class_def(variant), "generate")
    for params in SAMPLE_PARAMS:
        language = variant.language_for(params, "en")
        keywords = set(variant.generate_kwargs(params, language))
        assert_call_fits(generate, ["text"], keywords)
        assert "audio_prompt_path" in parameters(generate).names
        assert "audio_prompt_path" not in keywords


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=lambda variant: variant.setting)
def test_prepare_conditionals_accepts_what_the_adapter_passes(variant: Variant) -> None:
    prepare = method(class_def(variant), "prepare_conditionals")
    for params in SAMPLE_PARAMS:
        assert_call_fits(prepare, ["wav_fpath"], set(variant.conditionals_kwargs(params)))


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=lambda variant: variant.setting)
@pytest.mark.parametrize("checkpoint_dir", [Path("/models/chatterbox"), None])
def test_constructors_accept_what_the_loader_passes(variant: Variant, checkpoint_dir: Path | None) -> None:
    method_name, keywords = model_constructor_call(checkpoint_dir, "cuda")
    constructor = method(class_def(variant), method_name)

    assert is_classmethod(constructor)
    assert_call_fits(constructor, [], set(keywords))
    assert keywords["device"] == "cuda"


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=lambda variant: variant.setting)
def test_model_attributes_the_engine_swaps_exist(variant: Variant) -> None:
    cls = class_def(variant)
    assigned = {
        target.attr
        for node in ast.walk(method(cls, "__init__"))
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute)
    }
    assert {"sr", "conds", "watermarker"} <= assigned
    # NoWatermark must fit the call generate makes on the watermarker.
    watermark_calls = [call for func, call in method_calls(method(cls, "generate")) if func.attr == "apply_watermark"]
    assert watermark_calls
    assert all([keyword.arg for keyword in call.keywords] == ["sample_rate"] for call in watermark_calls)


def test_turbo_normalises_loudness_through_the_patched_method() -> None:
    cls = class_def(VARIANTS["turbo"])
    prepare = method(cls, "prepare_conditionals")

    # The float32 fix replaces `norm_loudness` on the instance; it works because the call goes through self.
    assert any(
        func.attr == "norm_loudness" and isinstance(func.value, ast.Name) and func.value.id == "self"
        for func, _ in method_calls(prepare)
    )
    # The reference-length check mirrors the library's own assert.
    assertions = [node for node in ast.walk(prepare) if isinstance(node, ast.Assert)]
    constants = {n.value for a in assertions for n in ast.walk(a) if isinstance(n, ast.Constant)}
    assert TURBO_MIN_REFERENCE_SECONDS in constants


def test_multilingual_language_list_matches_the_package() -> None:
    module = parsed_module(VARIANTS["multilingual"].module)
    languages = next(
        ast.literal_eval(node.value)
        for node in module.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "SUPPORTED_LANGUAGES" for t in node.targets)
    )
    assert set(languages) == MULTILINGUAL_LANGUAGES


def test_the_hook_leak_the_adapter_clears_is_where_it_looks() -> None:
    analyzer = (package_dir() / "models/t3/inference/alignment_stream_analyzer.py").read_text(encoding="utf-8")
    t3 = parsed_module("chatterbox.models.t3.t3")

    assert "tfmr.layers[layer_idx].self_attn" in analyzer
    assert "register_forward_hook" in analyzer
    # T3 hands its own transformer (`model.t3.tfmr`) to the analyzer.
    analyzer_calls = [
        node
        for node in ast.walk(t3)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "AlignmentStreamAnalyzer"
    ]
    assert analyzer_calls
    assert all(ast.unparse(call.args[0]) == "self.tfmr" for call in analyzer_calls)


def test_the_package_was_never_imported() -> None:
    assert "chatterbox" not in sys.modules


# --- 2. The engine around a stand-in model ---------------------------------------------------------------


@dataclass
class StandInConds:
    reference: bytes
    kwargs: dict[str, object]
    samples_dtype: np.dtype[Any]


@dataclass
class GenerateCall:
    text: str
    kwargs: dict[str, object]
    conds: object
    inference_mode: bool


class RecordingWatermarker:
    def __init__(self) -> None:
        self.calls = 0

    def apply_watermark(self, wav: npt.NDArray[np.float32], sample_rate: int) -> npt.NDArray[np.float32]:
        self.calls += 1
        return wav


class AttentionLayer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self_attn = torch.nn.Identity()


class StandInTransformer:
    def __init__(self) -> None:
        self.layers = [AttentionLayer() for _ in range(12)]


class StandInT3:
    def __init__(self) -> None:
        self.tfmr = StandInTransformer()


BUILTIN_VOICE = StandInConds(b"conds.pt", {}, np.dtype(np.float32))


class StandInModel:
    """A stand-in for a ChatterBox model on a GPU: the real weights cannot be downloaded here.

    It has the real classes' surface (`sr`, `conds`, `watermarker`, `prepare_conditionals`, `generate`,
    Turbo's `norm_loudness`, the multilingual model's `t3.tfmr.layers`) and reproduces the behaviours the
    adapter must handle: generate is not reentrant, Turbo's loudness step returns float64 under numpy 2, the
    0.1.7 multilingual model leaves a forward hook behind on every call and fails on very short texts.
    """

    sr = 24000

    def __init__(self, variant: ChatterboxVariant, conds: object) -> None:
        self.variant = variant
        self.conds = conds
        self.watermarker: Any = RecordingWatermarker()
        self.t3 = StandInT3()
        self.prepared: list[StandInConds] = []
        self.generated: list[GenerateCall] = []
        self.prepare_inference_mode: list[bool] = []
        self.max_concurrent_generates = 0
        self.fail_next_generate = False
        self._active_generates = 0
        self._counter_lock = threading.Lock()

    def norm_loudness(self, wav: npt.NDArray[np.float32], sr: int, target_lufs: float = -27) -> Any:
        return wav * np.float64(1.5)  # what numpy 2 gives for a float32 array times pyloudnorm's float64 gain

    def prepare_conditionals(self, wav_fpath: str, **kwargs: Any) -> None:
        self.prepare_inference_mode.append(torch.is_inference_mode_enabled())
        samples = np.full(16, 0.1, dtype=np.float32)
        if kwargs.get("norm_loudness"):
            samples = self.norm_loudness(samples, self.sr)
        self.conds = StandInConds(Path(wav_fpath).read_bytes(), kwargs, samples.dtype)
        self.prepared.append(self.conds)

    def generate(self, text: str, **kwargs: Any) -> torch.Tensor:
        with self._counter_lock:
            self._active_generates += 1
            self.max_concurrent_generates = max(self.max_concurrent_generates, self._active_generates)
        try:
            self.generated.append(GenerateCall(text, kwargs, self.conds, torch.is_inference_mode_enabled()))
            if self.variant == "multilingual":
                self.t3.tfmr.layers[9].self_attn.register_forward_hook(lambda *_: None)
            if self.fail_next_generate:
                self.fail_next_generate = False
                raise RuntimeError("CUDA error: device-side assert triggered")
            if self.variant == "multilingual" and len(text.split()) <= 2:
                # 0.1.7's alignment analyzer on a text of 5 tokens or fewer (chatterbox #548).
                raise IndexError("max(): Expected reduction dim 1 to have non-zero size.")
            time.sleep(0.002)  # long enough for a second thread to walk in if nothing stops it
            wav = np.linspace(-0.5, 0.5, 2400, dtype=np.float32)
            watermarked = self.watermarker.apply_watermark(wav, sample_rate=self.sr)
            return torch.from_numpy(watermarked).unsqueeze(0)
        finally:
            with self._counter_lock:
                self._active_generates -= 1


@dataclass
class Harness:
    engine: ChatterboxEngine
    model: StandInModel
    devices: list[str]
    original_watermarker: RecordingWatermarker

    def speak(self, reference: Path | None = None, **params: Any) -> npt.NDArray[np.float32]:
        return self.engine.synthesize("Hello there, how are you today?", reference, GenerationParams(**params))

    def calls_after_warm_up(self) -> list[GenerateCall]:
        """The generate calls after the one `load()` makes to warm up."""
        return self.model.generated[1:]


def make_settings(**overrides: Any) -> Settings:
    """Defaults plus `overrides`, ignoring the environment and any .env file."""
    return Settings.model_construct(**overrides)


def make_harness(
    variant: ChatterboxVariant = "turbo", builtin_voice: object = BUILTIN_VOICE, **overrides: Any
) -> Harness:
    settings = make_settings(
        tts_engine="chatterbox",
        chatterbox_variant=variant,
        chatterbox_device=overrides.pop("chatterbox_device", "cpu"),
        **overrides,
    )
    model = StandInModel(variant, conds=builtin_voice)
    devices: list[str] = []

    def load_model(device: str) -> StandInModel:
        devices.append(device)
        return model

    original_watermarker = model.watermarker
    engine = ChatterboxEngine(settings, load_model=load_model)
    engine.load()
    return Harness(engine, model, devices, original_watermarker)


def write_wav(path: Path, seconds: float, frequency: float = 220.0, sample_rate: int = 16000) -> Path:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    samples = (0.3 * np.sin(2 * math.pi * frequency * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(sample_rate)
        output.writeframes(samples.tobytes())
    return path


@pytest.fixture
def voice(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "voice.wav", seconds=6.0)


def test_loads_once_on_the_configured_device_and_warms_up_with_the_builtin_voice() -> None:
    harness = make_harness()
    harness.engine.load()

    assert harness.devices == ["cpu"]
    assert harness.engine.name == "chatterbox-turbo"
    assert harness.engine.sample_rate == 24000
    assert len(harness.model.generated) == 1
    assert harness.model.generated[0].conds is BUILTIN_VOICE


def test_auto_device_is_cpu_without_an_accelerator() -> None:
    assert select_device() == "cpu"
    harness = make_harness(chatterbox_device="auto")

    assert harness.engine.device == "cpu"
    assert harness.devices == ["cpu"]


def test_output_is_mono_float32() -> None:
    audio = make_harness().speak()

    assert audio.dtype == np.float32
    assert audio.shape == (2400,)


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_generate_gets_the_variant_keywords_under_inference_mode(variant: ChatterboxVariant, voice: Path) -> None:
    harness = make_harness(variant)
    harness.speak()
    harness.speak(voice, exaggeration=0.5)

    expected = set(VARIANTS[variant].generate_kwargs(GenerationParams(), "en"))
    for call in harness.model.generated:
        assert set(call.kwargs) == expected
        assert "audio_prompt_path" not in call.kwargs
        assert call.inference_mode
    assert harness.model.prepare_inference_mode == [True]


def test_conditionals_are_prepared_once_per_reference_content(tmp_path: Path, voice: Path) -> None:
    harness = make_harness()
    same_content_elsewhere = tmp_path / "copy.wav"
    same_content_elsewhere.write_bytes(voice.read_bytes())

    harness.speak(voice)
    harness.speak(voice)
    harness.speak(same_content_elsewhere)
    assert len(harness.model.prepared) == 1

    write_wav(voice, seconds=6.0, frequency=330.0)
    harness.speak(voice)
    assert len(harness.model.prepared) == 2
    first, second = harness.model.prepared
    used = [call.conds for call in harness.calls_after_warm_up()]
    assert [conds is first for conds in used] == [True, True, True, False]
    assert used[-1] is second


def test_builtin_voice_comes_back_after_a_reference(voice: Path) -> None:
    harness = make_harness()
    harness.speak(voice)
    harness.speak()

    assert harness.model.generated[-1].conds is BUILTIN_VOICE


def test_no_reference_and_no_builtin_voice_is_refused() -> None:
    harness = make_harness(builtin_voice=None)

    assert harness.model.generated == []  # nothing to warm up with
    with pytest.raises(EngineError, match="no built-in voice"):
        harness.speak()


def test_missing_reference_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="missing"):
        make_harness().speak(tmp_path / "gone.wav")


@pytest.mark.parametrize(
    ("variant", "first", "second"),
    [
        ("turbo", {"norm_loudness": True}, {"norm_loudness": False}),
        ("standard", {"exaggeration": 0.3}, {"exaggeration": 0.6}),
        ("multilingual", {"exaggeration": 0.3}, {"exaggeration": 0.6}),
    ],
)
def test_conditionals_are_keyed_by_what_prepare_conditionals_receives(
    variant: ChatterboxVariant, first: dict[str, object], second: dict[str, object], voice: Path
) -> None:
    harness = make_harness(variant)
    harness.speak(voice, **first)
    harness.speak(voice, **second)
    harness.speak(voice, **first)

    assert [prepared.kwargs for prepared in harness.model.prepared] == [first, second]


def test_least_recently_used_conditionals_are_evicted(tmp_path: Path) -> None:
    harness = make_harness(conditionals_cache_size=2)
    a, b, c = (
        write_wav(tmp_path / f"{n}.wav", 6.0, frequency) for n, frequency in zip("abc", (200, 300, 400), strict=True)
    )

    for reference in (a, b, c):  # a is evicted by c
        harness.speak(reference)
    harness.speak(c)
    harness.speak(b)
    assert len(harness.model.prepared) == 3

    harness.speak(a)  # prepared again, evicting c (least recently used)
    harness.speak(b)
    assert len(harness.model.prepared) == 4
    harness.speak(c)
    assert [prepared.reference for prepared in harness.model.prepared] == [
        reference.read_bytes() for reference in (a, b, c, a, c)
    ]


def test_standard_clamps_cfg_weight_above_zero() -> None:
    harness = make_harness("standard")
    harness.speak(cfg_weight=0.0)
    harness.speak(cfg_weight=0.7)

    assert [call.kwargs["cfg_weight"] for call in harness.calls_after_warm_up()] == [
        STANDARD_MIN_CFG_WEIGHT,
        0.7,
    ]
    assert "top_k" not in harness.model.generated[-1].kwargs
    assert "norm_loudness" not in harness.model.generated[-1].kwargs


def test_turbo_refuses_a_reference_of_five_seconds_or_less(tmp_path: Path) -> None:
    harness = make_harness("turbo")
    short = write_wav(tmp_path / "short.wav", seconds=3.0)

    with pytest.raises(EngineError, match=r"longer than 5 seconds; this one lasts 3\.00 s"):
        harness.speak(short)
    assert harness.model.prepared == []
    # Only Turbo has the limit.
    make_harness("standard").speak(short)


def test_turbo_refuses_a_reference_it_cannot_decode(tmp_path: Path) -> None:
    garbage = tmp_path / "voice.wav"
    garbage.write_bytes(b"this is not audio" * 100)

    with pytest.raises(EngineError, match="could not be decoded"):
        make_harness("turbo").speak(garbage)


def test_turbo_loudness_normalisation_yields_float32(voice: Path) -> None:
    harness = make_harness("turbo")
    harness.speak(voice, norm_loudness=True)

    assert harness.model.prepared[0].samples_dtype == np.float32


def test_english_only_variants_refuse_other_languages() -> None:
    harness = make_harness("turbo")
    harness.speak(language="en-GB")

    with pytest.raises(EngineError, match="English only"):
        harness.speak(language="fr")


def test_multilingual_passes_the_language() -> None:
    harness = make_harness("multilingual", chatterbox_language="de")
    harness.speak(language="fr")
    harness.speak(language="pt-BR")
    harness.speak()

    assert [call.kwargs["language_id"] for call in harness.model.generated] == ["en", "fr", "pt", "de"]


@pytest.mark.parametrize(("configured", "requested", "message"), [("", None, "needs a language"), ("en", "xx", "'xx'")])
def test_multilingual_refuses_a_missing_or_unknown_language(
    configured: str, requested: str | None, message: str
) -> None:
    harness = make_harness("multilingual", chatterbox_language=configured)
    calls = len(harness.model.generated)

    with pytest.raises(EngineError, match=message):
        harness.speak(language=requested)
    assert len(harness.model.generated) == calls


def test_multilingual_forward_hooks_are_cleared_after_every_generate() -> None:
    harness = make_harness("multilingual")
    layers = harness.model.t3.tfmr.layers

    harness.speak()
    assert all(not layer.self_attn._forward_hooks for layer in layers)

    harness.model.fail_next_generate = True
    with pytest.raises(RuntimeError):
        harness.speak()
    assert all(not layer.self_attn._forward_hooks for layer in layers)


def test_multilingual_too_short_text_is_a_clear_engine_error() -> None:
    harness = make_harness("multilingual")
    with pytest.raises(EngineError, match="cannot speak text this short"):
        harness.engine.synthesize("Hi.", None, GenerationParams())
    assert all(not layer.self_attn._forward_hooks for layer in harness.model.t3.tfmr.layers)
    # Other failures are not dressed up as the caller's fault.
    harness.model.fail_next_generate = True
    with pytest.raises(RuntimeError, match="CUDA error"):
        harness.speak()


def test_watermark_is_on_by_default() -> None:
    harness = make_harness()
    harness.speak()

    assert harness.model.watermarker is harness.original_watermarker
    assert harness.original_watermarker.calls == 2  # warm-up and this call


def test_watermark_off_swaps_in_a_no_op() -> None:
    harness = make_harness(chatterbox_watermark=False)
    audio = harness.speak()

    assert isinstance(harness.model.watermarker, NoWatermark)
    assert harness.original_watermarker.calls == 0
    np.testing.assert_array_equal(audio, np.linspace(-0.5, 0.5, 2400, dtype=np.float32))


def test_concurrent_callers_never_overlap_inside_generate(tmp_path: Path) -> None:
    harness = make_harness()
    references = [write_wav(tmp_path / f"{n}.wav", 6.0, 200 + 50 * n) for n in range(3)]
    errors: list[BaseException] = []

    def speak(index: int) -> None:
        try:
            for round_number in range(5):
                reference = references[(index + round_number) % len(references)] if index % 2 else None
                harness.speak(reference)
        except BaseException as error:  # surfaced below; a thread's exception would be lost otherwise
            errors.append(error)

    threads = [threading.Thread(target=speak, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert harness.model.max_concurrent_generates == 1
    assert len(harness.model.generated) == 1 + 4 * 5
    assert len(harness.model.prepared) == 3


def test_unload_releases_the_model() -> None:
    harness = make_harness()
    harness.engine.unload()

    with pytest.raises(RuntimeError, match="not loaded"):
        harness.speak()


# --- The factory -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "name"),
    [("turbo", "chatterbox-turbo"), ("standard", "chatterbox"), ("multilingual", "chatterbox-multilingual")],
)
def test_factory_builds_the_configured_variant(variant: ChatterboxVariant, name: str) -> None:
    settings = make_settings(tts_engine="chatterbox", chatterbox_variant=variant)
    engine = create_engine(settings)

    assert isinstance(engine, ChatterboxEngine)
    assert engine.name == name
    assert model_name(settings) == name


def test_choosing_an_engine_imports_neither_torch_nor_chatterbox() -> None:
    script = """
import sys
from core.settings import Settings
from workers.engines.factory import create_engine, model_name
settings = Settings.model_construct(tts_engine="chatterbox", chatterbox_variant="multilingual")
engine = create_engine(settings)
print(model_name(settings), engine.name, engine.sample_rate)
assert "torch" not in sys.modules and "chatterbox" not in sys.modules, "heavy import"
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[1],
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["chatterbox-multilingual", "chatterbox-multilingual", "24000"]
