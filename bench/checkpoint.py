"""Random-weight checkpoints of ChatterBox's real architectures, for tests, benchmarks and trying the service.

    python -m bench.checkpoint --variant turbo --out DIR [--mean-tokens 40] [--min-tokens 0] [--seed 0]

No trained weights can be downloaded here. This builds every module of the chosen model with chatterbox-tts 0.1.7's
own constructors, seeded, and writes exactly the files its `from_local` reads: the weights, tokenizer files made
locally, and a built-in voice (`conds.pt`) prepared by the library's own `prepare_conditionals` from a spoken
espeak clip (kept as `reference.wav`, a reference clip for tests). Loading and running it exercises every line of
the real library at the real cost per token, but what it says is noise-like speech from random weights: it is for
testing the machinery and measuring speed, not for listening.

A random T3 almost never samples its stop token, so every generate would run to the library's limit of 1000
tokens. The builder makes the stop token's logit (nearly) constant and calibrates it on the model's own decoding, so
that at the library's default sampling settings it is drawn with probability 1/(N+1) at each step: speech lengths
then follow a geometric distribution with a mean of N tokens (`--mean-tokens`; 25 tokens are a second of speech).
A Turbo checkpoint can also hold the stop token off for the first M tokens (`--min-tokens`), so that lengths are
M plus a geometric tail of mean N - M: nearly steady, as a trained model's are for one text, which benchmarks
need to be repeatable. The same seed builds the same files.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import sys
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.settings import ChatterboxVariant, Settings
from tasks.spec import Sampling
from workers.engines.chatterbox import PKUSEG_DIR, STANDARD_MIN_CFG_WEIGHT

if TYPE_CHECKING:
    import torch

log = logging.getLogger("bench.checkpoint")

NOTICE = (
    "Random weights of the real architecture: the voice is noise-like speech, for testing the machinery and "
    "measuring speed, not for listening."
)
MANIFEST = "checkpoint.json"
REFERENCE_CLIP = "reference.wav"
REFERENCE_TEXT = (
    "This reference clip is spoken by espeak, so that the random model has a real voice to condition on. "
    "It lasts long enough for every ChatterBox model, including Turbo, which needs more than five seconds."
)
CALIBRATION_TEXT = "The quick brown fox jumps over the lazy dog, and then it runs far away into the quiet woods."
CALIBRATION_STEPS = 32
START_SPEECH, STOP_SPEECH = 6561, 6562
SUPPRESSED = -1e4
# The original and multilingual T3 never stop before this many tokens: a Llama head has no bias, so the stop logit
# rides on one hidden component made constant (see _LlamaStop); early positions get the opposite sign.
LLAMA_MIN_TOKENS = 3
LLAMA_STOP_COMPONENT = 0
LLAMA_SUPPRESS_COMPONENT = 1
LLAMA_REPEAT_COMPONENT = 2
REPEATED_TOKEN = 1000
LLAMA_REPEAT_WEIGHT = 2.0
"""The multilingual T3's way to stop (see _LlamaStop.stop_by_repetition)."""
LLAMA_STOP_LEVEL = 20.0
GPT2_HOLD_COMPONENT = 0
GPT2_HOLD_LEVEL = 20.0
STOP_HOLD_GAP = 24.0
"""How far below its calibrated value the stop logit is held while held off: at temperature 0.8, e^-30 of it."""
# A few hundred words of ordinary English, to train the byte-level BPE of the Turbo tokenizer on.
TOKENIZER_CORPUS = (
    REFERENCE_TEXT,
    CALIBRATION_TEXT,
    "Hello from the speech endpoint. This is the second sentence, a little longer than the first.",
    "Numbers like 1, 2, 3 and 2026 appear in text; so do names, places, dates and prices such as $3.50.",
    "She said: 'I never thought it would work!' He answered, quietly, that it always had.",
    "[laugh] [sigh] [cough] [chuckle] [gasp] [clear throat] [sniff] [groan] [shush]",
)
TURBO_VOCAB_SIZE = 2000
BENCH_MEAN_TOKENS, BENCH_MIN_TOKENS = 240, 220
"""The benchmarks' Turbo checkpoint: a few hundred speech tokens a chunk, nearly steady, so that runs repeat (the
benchmark texts are longer than the calibration text, so they speak about 200: 8 s of speech)."""
# Characters the locally made tokenizers of the original and multilingual models know (after NFKD, lowercased for
# the multilingual one); anything else is [UNK], as with the real vocabularies' unknowns.
_CHARACTERS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    ".,;:!?'\"-()[]/&%$€£+*=@#<>\u0300\u0301\u0302\u0303\u0308\u0327"
)
MULTILINGUAL_LANGUAGE_TOKENS = (
    "ar", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "it", "ja",
    "ko", "ms", "nl", "no", "pl", "pt", "ru", "sv", "sw", "tr", "zh",
)  # fmt: skip


@dataclass(frozen=True)
class BuildRequest:
    variant: ChatterboxVariant
    out: Path
    mean_tokens: float = 40.0
    min_tokens: int = 0
    """Turbo only: the stop token is held off for this many speech tokens of the calibration text (see _GPT2Hold)."""
    seed: int = 0
    reference: Path | None = None
    """A spoken clip of more than 5 s for the built-in voice; None: espeak's."""

    @property
    def stop_probability(self) -> float:
        return 1.0 / (self.mean_tokens - self.min_tokens + 1.0)


def build(request: BuildRequest) -> Path:
    """Write the checkpoint to `request.out` (atomically: a half-built directory is never left under that name)."""
    import torch

    started = time.perf_counter()
    partial = request.out.with_name(f".{request.out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    torch.manual_seed(request.seed)
    np.random.seed(request.seed)
    if request.reference is not None:
        shutil.copyfile(request.reference, partial / REFERENCE_CLIP)
    else:
        write_espeak_reference(partial / REFERENCE_CLIP)
    with _quiet_library():
        builder = _BUILDERS[request.variant]
        calibration = builder(request, partial)
    manifest = {
        "variant": request.variant,
        "seed": request.seed,
        "mean_tokens": request.mean_tokens,
        "min_tokens": request.min_tokens,
        "stop_calibration": calibration,
        "chatterbox_tts": _library_version(),
        "notice": NOTICE,
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(request.out, ignore_errors=True)
    partial.rename(request.out)
    log.info("built %s checkpoint in %s in %.1f s", request.variant, request.out, time.perf_counter() - started)
    return request.out


def turbo_t3_config() -> Any:
    """The configuration ChatterboxTurboTTS.from_local builds its T3 with."""
    from chatterbox.models.t3.modules.t3_config import T3Config

    hp = T3Config(text_tokens_dict_size=50276)
    hp.llama_config_name = "GPT2_medium"
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    return hp


def _build_turbo(request: BuildRequest, out: Path) -> dict[str, float]:
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts_turbo import ChatterboxTurboTTS, punc_norm
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    ve = VoiceEncoder().eval()
    t3 = T3(turbo_t3_config()).eval()
    s3gen = S3Gen(meanflow=True).eval()
    _write_gpt2_tokenizer(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = ChatterboxTurboTTS(t3, s3gen, ve, tokenizer, "cpu")
    model.prepare_conditionals(str(out / REFERENCE_CLIP))
    text_tokens = tokenizer(punc_norm(CALIBRATION_TEXT), return_tensors="pt").input_ids
    calibration = calibrate_turbo_stop(t3, model.conds.t3, text_tokens, request.stop_probability, request.min_tokens)
    save_file(ve.state_dict(), out / "ve.safetensors")
    save_file(_contiguous(t3.state_dict()), out / "t3_turbo_v1.safetensors")
    save_file(_contiguous(s3gen.state_dict()), out / "s3gen_meanflow.safetensors")
    model.conds.save(out / "conds.pt")
    return calibration


def calibrate_turbo_stop(
    t3: Any, t3_cond: Any, text_tokens: torch.Tensor, stop_probability: float, min_tokens: int = 0
) -> dict[str, float]:
    """Set a Turbo T3's stop token so that, at generate()'s default sampling, it is drawn with `stop_probability`
    at each step: from the first step, or, with `min_tokens`, once `text_tokens`' speech is that long (_GPT2Hold).
    The start-of-speech token, which a trained T3 never says, is never drawn."""
    import torch

    head = t3.speech_head
    with torch.no_grad():
        head.weight[[START_SPEECH, STOP_SPEECH]] = 0.0
        head.bias[[START_SPEECH, STOP_SPEECH]] = SUPPRESSED
    hold = _GPT2Hold(t3, t3_cond, text_tokens, min_tokens) if min_tokens else None
    # The library's own decoding at Turbo's default sampling, with the stop token held off while logits are
    # recorded: generate()'s defaults are temperature 0.8, top_k 1000, top_p 0.95, repetition penalty 1.2.
    with _recorded_logits(head) as steps:
        t3.inference_turbo(t3_cond, text_tokens, max_gen_len=min_tokens + CALIBRATION_STEPS - 1)
    held, free = steps[:min_tokens], steps[min_tokens:]
    others = [_log_partition(logits[0, -1], 0.8, 0.95, excluded=[START_SPEECH, STOP_SPEECH]) for logits, _ in free]
    # p(stop) = e^(b/T) / (e^(b/T) + Z): solve for b at the median partition sum Z.
    temperature = 0.8
    log_odds = math.log(stop_probability / (1 - stop_probability))
    stop_logit = temperature * (log_odds + float(np.median(others)))
    calibration = {"stop_logit": stop_logit, "median_log_partition": float(np.median(others))}
    with torch.no_grad():
        head.bias[STOP_SPEECH] = stop_logit
    if hold is not None:
        calibration |= hold.calibrate(stop_logit, held=[x for _, x in held], free=[x for _, x in free])
    return calibration


def _build_standard(request: BuildRequest, out: Path) -> dict[str, float]:
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.tokenizers import EnTokenizer
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts import ChatterboxTTS, punc_norm
    from safetensors.torch import save_file

    ve = VoiceEncoder().eval()
    t3 = T3().eval()
    s3gen = S3Gen().eval()
    _write_character_tokenizer(out / "tokenizer.json", language_tokens=())
    tokenizer = EnTokenizer(str(out / "tokenizer.json"))
    model = ChatterboxTTS(t3, s3gen, ve, tokenizer, "cpu")
    model.prepare_conditionals(str(out / REFERENCE_CLIP))
    text_tokens = tokenizer.text_to_tokens(punc_norm(CALIBRATION_TEXT))
    calibration = _LlamaStop(t3).calibrate(request.stop_probability, model.conds.t3, text_tokens)
    save_file(ve.state_dict(), out / "ve.safetensors")
    save_file(_contiguous(t3.state_dict()), out / "t3_cfg.safetensors")
    save_file(_contiguous(s3gen.state_dict()), out / "s3gen.safetensors")
    model.conds.save(out / "conds.pt")
    return calibration


def _build_multilingual(request: BuildRequest, out: Path) -> dict[str, float]:
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.tokenizers import MTLTokenizer
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.mtl_tts import ChatterboxMultilingualTTS, punc_norm
    from safetensors.torch import save_file

    ve = VoiceEncoder().eval()
    t3 = T3(T3Config.multilingual()).eval()
    s3gen = S3Gen().eval()
    tokenizer_file = out / "grapheme_mtl_merged_expanded_v1.json"
    _write_character_tokenizer(tokenizer_file, language_tokens=MULTILINGUAL_LANGUAGE_TOKENS)
    # spacy-pkuseg reads PKUSEG_HOME once, when first imported (by the trainer here).
    with pkuseg_home(out):
        _write_pkuseg_model(out / PKUSEG_DIR)
        tokenizer = MTLTokenizer(str(tokenizer_file))
    model = ChatterboxMultilingualTTS(t3, s3gen, ve, tokenizer, "cpu")
    model.prepare_conditionals(str(out / REFERENCE_CLIP))
    text_tokens = tokenizer.text_to_tokens(punc_norm(CALIBRATION_TEXT), language_id="en")
    stop = _LlamaStop(t3)
    stop.stop_by_repetition()
    calibration = stop.calibrate(request.stop_probability, model.conds.t3, text_tokens)
    for layer in t3.tfmr.layers:  # 0.1.7's alignment analyser leaves its hooks behind
        layer.self_attn._forward_hooks.clear()
    torch.save(ve.state_dict(), out / "ve.pt")
    save_file(_contiguous(t3.state_dict()), out / "t3_mtl23ls_v2.safetensors")
    torch.save(s3gen.state_dict(), out / "s3gen.pt")
    model.conds.save(out / "conds.pt")
    return calibration


_BUILDERS: dict[ChatterboxVariant, Callable[[BuildRequest, Path], dict[str, float]]] = {
    "turbo": _build_turbo,
    "standard": _build_standard,
    "multilingual": _build_multilingual,
}


class _GPT2Hold:
    """Turbo's stop token held off until the speech of `text_tokens` (the calibration text) is `min_tokens` long.

    Turbo's GPT-2 has no speech position embedding, only its absolute one (`wpe`), so the hold is by absolute
    position: a text with more tokens than the calibration text speaks that many fewer before the stop can come.
    One component of the position embedding is made large, negative before that position and positive from it on;
    the stop token's head row reads it, so that its logit is the calibrated one from there on, STOP_HOLD_GAP less
    before.
    """

    def __init__(self, t3: Any, t3_cond: Any, text_tokens: torch.Tensor, min_tokens: int) -> None:
        import torch

        self._t3 = t3
        start = t3.hp.start_speech_token * torch.ones_like(text_tokens[:, :1])
        embeds, _ = t3.prepare_input_embeds(t3_cond=t3_cond, text_tokens=text_tokens, speech_tokens=start)
        # The prompt's last position (the start of speech) predicts speech token 0.
        first_free = embeds.shape[1] - 1 + min_tokens
        with torch.no_grad():
            positions = t3.tfmr.wpe.weight
            positions[:first_free, GPT2_HOLD_COMPONENT] = -GPT2_HOLD_LEVEL
            positions[first_free:, GPT2_HOLD_COMPONENT] = GPT2_HOLD_LEVEL
        self.first_free_position = first_free

    def calibrate(self, stop_logit: float, *, held: list[Any], free: list[Any]) -> dict[str, float]:
        """Set the stop row to give `stop_logit` at the median component of the `free` steps' head inputs, and
        STOP_HOLD_GAP less at the `held` steps' median."""
        import torch

        held_component = float(np.median([float(x[0, -1, GPT2_HOLD_COMPONENT]) for x in held]))
        free_component = float(np.median([float(x[0, -1, GPT2_HOLD_COMPONENT]) for x in free]))
        weight = STOP_HOLD_GAP / (free_component - held_component)
        head = self._t3.speech_head
        with torch.no_grad():
            head.weight[STOP_SPEECH, GPT2_HOLD_COMPONENT] = weight
            head.bias[STOP_SPEECH] = stop_logit - weight * free_component
        return {
            "first_free_position": self.first_free_position,
            "held_component": held_component,
            "free_component": free_component,
            "stop_weight": weight,
        }


class _LlamaStop:
    """The stop logit of a Llama T3 (whose speech head has no bias), made nearly constant and then calibrated.

    One hidden component is made large and constant for every speech token (a column of the speech embedding), so
    it stays nearly constant through the residual stream and the final norm; the stop token's head row reads only
    that component. The speech position embedding flips its sign for the first LLAMA_MIN_TOKENS positions, so the
    model never stops before speaking a few tokens.
    """

    def __init__(self, t3: Any) -> None:
        import torch

        self._t3 = t3
        head = t3.speech_head
        with torch.no_grad():
            t3.speech_emb.weight[:, LLAMA_STOP_COMPONENT] = LLAMA_STOP_LEVEL
            t3.speech_pos_emb.emb.weight[:LLAMA_MIN_TOKENS, LLAMA_STOP_COMPONENT] = -2 * LLAMA_STOP_LEVEL
            head.weight[STOP_SPEECH] = 0.0
            # The head's rows past S3Gen's 6561 tokens (start, and the unused 6563 and up) read a second constant
            # component, negatively: a trained T3 never samples them, and the multilingual generate passes every
            # token but start and stop to S3Gen, whose embedding has no row for them.
            t3.speech_emb.weight[:, LLAMA_SUPPRESS_COMPONENT] = LLAMA_STOP_LEVEL
            unused = [START_SPEECH, *range(STOP_SPEECH + 1, head.weight.shape[0])]
            head.weight[unused] = 0.0
            head.weight[unused, LLAMA_SUPPRESS_COMPONENT] = -LLAMA_STOP_LEVEL
        self._stopping_row, self._stopping_component = STOP_SPEECH, LLAMA_STOP_COMPONENT

    def stop_by_repetition(self) -> None:
        """The multilingual T3 cannot stop on its own token: 0.1.7's alignment analyser holds the stop token back
        until the attention has walked through the text, which random attention never does; it stops a sequence
        that says one token twice in a row instead. So REPEATED_TOKEN, once said, is said again (its embedding
        carries a component that its head row reads, strongly), and `calibrate` gives it the chance of being
        said first that the stop token has in the other models."""
        import torch

        t3, level = self._t3, LLAMA_STOP_LEVEL
        with torch.no_grad():
            # One sign for the token, the other for all the rest, so what the layers add cannot blur the two.
            t3.speech_emb.weight[:, LLAMA_REPEAT_COMPONENT] = -level
            t3.speech_emb.weight[REPEATED_TOKEN, LLAMA_REPEAT_COMPONENT] = level
            t3.speech_head.weight[REPEATED_TOKEN] = 0.0
            t3.speech_head.weight[REPEATED_TOKEN, LLAMA_REPEAT_COMPONENT] = LLAMA_REPEAT_WEIGHT
        self._stopping_row, self._stopping_component = REPEATED_TOKEN, LLAMA_SUPPRESS_COMPONENT

    def calibrate(self, stop_probability: float, t3_cond: Any, text_tokens: torch.Tensor) -> dict[str, float]:
        """Decode with the library's own T3.inference at the service's default sampling (tasks.spec.Sampling:
        temperature 0.8, top_p 0.95, no min_p, repetition penalty 1.2, no guidance), record what the speech head
        sees and says, and set the stopping row's one weight.

        The service's defaults rather than generate()'s, because min_p (0.05 there) keeps only tokens close to
        the likeliest, where no token can have a small steady chance of being drawn.
        """
        import torch
        from torch.nn.functional import pad

        defaults = Sampling()
        t3, temperature, top_p = self._t3, defaults.temperature, defaults.top_p
        cfg_weight = max(defaults.cfg_weight, STANDARD_MIN_CFG_WEIGHT)
        tokens = torch.cat([text_tokens, text_tokens])  # the guidance pair, as generate() builds it
        tokens = pad(pad(tokens, (1, 0), value=t3.hp.start_text_token), (0, 1), value=t3.hp.stop_text_token)
        with _recorded_logits(t3.speech_head) as steps:
            t3.inference(
                t3_cond=t3_cond,
                text_tokens=tokens,
                max_new_tokens=CALIBRATION_STEPS,
                temperature=temperature,
                cfg_weight=cfg_weight,
                repetition_penalty=defaults.repetition_penalty,
                min_p=defaults.min_p,
                top_p=top_p,
            )
        components, partitions, rest = [], [], []
        for logits, hidden in steps:
            cond, uncond = logits[0, -1], logits[1, -1]
            components.append(float(hidden[0, -1, self._stopping_component]))
            combined = cond + cfg_weight * (cond - uncond)
            excluded = [START_SPEECH, STOP_SPEECH, self._stopping_row]
            partitions.append(_log_partition(combined, temperature, top_p, excluded=excluded))
            rest.append(float(combined[self._stopping_row]))  # what the row's other weights give it
        # (w * x + rest) / T - log Z = log(q / (1 - q)) at the medians of component x, rest and partition sum Z.
        log_odds = math.log(stop_probability / (1 - stop_probability))
        component, partition = float(np.median(components)), float(np.median(partitions))
        weight = (temperature * (log_odds + partition) - float(np.median(rest))) / component
        with torch.no_grad():
            t3.speech_head.weight[self._stopping_row, self._stopping_component] = weight
        # T3.inference keeps the decoding wrapper it built as a submodule; it is no part of the checkpoint.
        del t3.patched_model
        return {"stop_weight": weight, "median_component": component, "median_log_partition": partition}


def _log_partition(logits: torch.Tensor, temperature: float, top_p: float, *, excluded: list[int]) -> float:
    """log of the sum of exp(logit / T) over the tokens but `excluded` that sampling keeps (top_k 1000 and top_p;
    the repetition penalty only lowers)."""
    import torch

    scaled = logits.clone() / temperature
    scaled[excluded] = -math.inf
    kept = torch.topk(scaled, 1000).values
    probabilities = torch.softmax(kept, dim=-1)
    in_top_p = torch.cumsum(probabilities, dim=-1) - probabilities < top_p
    return float(torch.logsumexp(kept[in_top_p], dim=-1))


@contextmanager
def _recorded_logits(head: Any) -> Iterator[list[tuple[Any, Any]]]:
    """(logits, input) of each call of the speech head while inside."""
    steps: list[tuple[Any, Any]] = []

    def record(_module: Any, inputs: tuple[Any, ...], output: Any) -> None:
        steps.append((output[:, -1:].detach().clone(), inputs[0][:, -1:].detach().clone()))

    handle = head.register_forward_hook(record)
    try:
        yield steps
    finally:
        handle.remove()


def write_espeak_reference(path: Path) -> None:
    """espeak speaking REFERENCE_TEXT, at its own 22050 Hz (the library resamples references itself)."""
    from workers.engines.base import ChunkRequest, GenerationParams, run_to_completion
    from workers.engines.espeak import EspeakEngine

    engine = EspeakEngine(Settings(espeak_words_per_minute=150))
    engine.load()
    spoken = run_to_completion(engine, [ChunkRequest("reference", REFERENCE_TEXT, None, GenerationParams())])
    pcm = (np.clip(spoken["reference"], -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(engine.sample_rate)
        clip.writeframes(pcm.tobytes())


def _write_gpt2_tokenizer(out: Path) -> None:
    """The five GPT-2 tokenizer files Turbo's AutoTokenizer.from_pretrained reads, from a small byte-level BPE."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TOKENIZER_CORPUS * 4, vocab_size=TURBO_VOCAB_SIZE, special_tokens=["<|endoftext|>"])
    bpe.save_model(str(out))
    end = "<|endoftext|>"
    config = {
        "tokenizer_class": "GPT2Tokenizer",
        "model_max_length": 1024,
        "bos_token": end,
        "eos_token": end,
        "unk_token": end,
        "add_prefix_space": False,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (out / "special_tokens_map.json").write_text(json.dumps({"bos_token": end, "eos_token": end, "unk_token": end}))
    (out / "added_tokens.json").write_text(json.dumps({end: bpe.token_to_id(end)}))


def _write_character_tokenizer(path: Path, *, language_tokens: tuple[str, ...]) -> None:
    """A `tokenizers` file with the original models' special tokens ([START] is 255 and [STOP] 0, as T3Config
    says) and one token per character."""
    from tokenizers import AddedToken, Tokenizer, models

    vocab = {"[STOP]": 0, "[UNK]": 1, "[SPACE]": 2, "[PAD]": 3, "[SEP]": 4, "[CLS]": 5, "[MASK]": 6}
    for character in _CHARACTERS:
        vocab.setdefault(character, len(vocab))
    for language in language_tokens:
        vocab[f"[{language}]"] = len(vocab)
    vocab["[START]"] = 255
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    specials = [token for token in vocab if token.startswith("[") and len(token) > 1]
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in specials])
    tokenizer.save(str(path))


PKUSEG_MODEL = "spacy_ontonotes"


@contextmanager
def pkuseg_home(checkpoint_dir: Path) -> Iterator[None]:
    """Points spacy-pkuseg at the checkpoint's segmenter model, as ChatterboxMultilingualTTS builds one eagerly."""
    previous = os.environ.get("PKUSEG_HOME")
    os.environ["PKUSEG_HOME"] = str(checkpoint_dir / PKUSEG_DIR)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PKUSEG_HOME"]
        else:
            os.environ["PKUSEG_HOME"] = previous


def _write_pkuseg_model(home: Path) -> None:
    """A small Chinese word segmenter trained here with spacy-pkuseg's own trainer, in the place of the model it
    would otherwise download (the multilingual tokenizer builds one whatever the language)."""
    import spacy_pkuseg

    corpus = home / "corpus"
    corpus.mkdir(parents=True)
    lines = ["我 爱 北京 天安门", "今天 天气 很 好", "我们 一起 去 公园", "他 在 学校 学习 中文"] * 8
    for name in ("train.txt", "test.txt"):
        (corpus / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with _quiet_stdout():
        spacy_pkuseg.train(str(corpus / "train.txt"), str(corpus / "test.txt"), str(home / PKUSEG_MODEL), train_iter=2)
    shutil.rmtree(corpus)
    (home / f"{PKUSEG_MODEL}.zip").touch()  # spacy-pkuseg downloads only when this archive is missing


@contextmanager
def _quiet_library() -> Iterator[None]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with _quiet_stdout():
        yield


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """The library prints progress to stdout; keep this tool's own output readable."""
    stdout = sys.stdout
    sys.stdout = sys.stderr if log.isEnabledFor(logging.DEBUG) else open(os.devnull, "w")  # noqa: SIM115
    try:
        yield
    finally:
        if sys.stdout is not sys.stderr:
            sys.stdout.close()
        sys.stdout = stdout


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.contiguous() for name, tensor in state.items()}


def _library_version() -> str:
    from importlib.metadata import version

    return version("chatterbox-tts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=NOTICE)
    parser.add_argument("--variant", choices=sorted(_BUILDERS), required=True)
    parser.add_argument("--out", type=Path, required=True, help="directory to write (replaced if it exists)")
    parser.add_argument("--mean-tokens", type=float, default=40.0, help="mean speech tokens per generate (25/s)")
    parser.add_argument(
        "--min-tokens", type=int, default=0, help="turbo: speech tokens before the stop token can come (see above)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", type=Path, help="a spoken clip of more than 5 s (default: espeak speaking)")
    args = parser.parse_args(argv)
    if args.mean_tokens < 1:
        parser.error("--mean-tokens must be at least 1")
    if not 0 <= args.min_tokens < args.mean_tokens:
        parser.error("--min-tokens must be at least 0 and less than --mean-tokens")
    if args.min_tokens and args.variant != "turbo":
        parser.error("--min-tokens is for the turbo variant")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("TQDM_DISABLE", "1")  # read when torch first imports tqdm
    log.info("%s", NOTICE)
    out = build(BuildRequest(args.variant, args.out, args.mean_tokens, args.min_tokens, args.seed, args.reference))
    log.info("load it with CHATTERBOX_CHECKPOINT_DIR=%s CHATTERBOX_VARIANT=%s", out, args.variant)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
