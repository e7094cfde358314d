"""ChatterBox Turbo for real: chatterbox-tts 0.1.7's own code on a random-weight checkpoint of the real architecture
(bench/checkpoint.py), run in this process on the CPU. Its voice is noise-like; every line of the library runs.

The batched engine is held to the library itself: one request alone gives bit for bit what `generate` gives for the
same seed; rows decoded together greedily give the tokens of the library's single-sequence `inference_turbo`,
however many rows and whenever they join; S3Gen over several rows gives each the length and level it has alone.
"""

from __future__ import annotations

import gc
import itertools
import logging
import math
import os
import shutil
import threading
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AttentionInterface

from core.settings import Settings
from tests.conftest import Checkpoints
from workers.engines.base import (
    Audio,
    AudioPiece,
    ChunkRequest,
    EngineError,
    GenerationParams,
    RequestFailed,
    run_to_completion,
)
from workers.engines.chatterbox import ChatterboxEngine
from workers.engines.packed_projections import PackedConv1D
from workers.engines.prefix_attention import SHARED_PREFIX_ATTENTION, shared_prefix_attention
from workers.engines.s3gen_batch import VocoderInput, by_prompt_shape, vocode
from workers.engines.turbo_batch import STOP_SPEECH, TurboBatch, TurboLimits, TurboRow, turbo_row
from workers.engines.voicing import CPU_VOICER_NICENESS

TEXTS = [
    "Hello there.",
    "A much longer sentence, with a good number of words in it, for the batch to decode.",
    "Numbers like one, two and three.",
    "Another one here for the test.",
    "Short.",
    "The quick brown fox jumps over the lazy dog.",
    "Seven rows are already decoding when this one joins them.",
    "And the last of eight.",
]
GREEDY = GenerationParams(top_k=1)
MAX_NEW_TOKENS = 40


@pytest.fixture(scope="module")
def engine(checkpoints: Checkpoints) -> Iterator[ChatterboxEngine]:
    torch.set_num_threads(2)
    settings = Settings.model_construct(
        tts_engine="chatterbox",
        chatterbox_variant="turbo",
        chatterbox_checkpoint_dir=checkpoints("turbo"),
        chatterbox_device="cpu",
        engine_max_batch=4,
        engine_max_speech_tokens=200,
    )
    loaded = ChatterboxEngine(settings)
    loaded.load()
    yield loaded
    loaded.unload()
    gc.collect()


@pytest.fixture(scope="module")
def reference(checkpoints: Checkpoints) -> Path:
    """A spoken clip of more than five seconds (the builder's espeak reference)."""
    return checkpoints("turbo") / "reference.wav"


def speak(engine: ChatterboxEngine, text: str, reference: Path | None = None, **params: Any) -> Audio:
    return run_to_completion(engine, [ChunkRequest("one", text, reference, GenerationParams(**params))])["one"]


def test_loads_the_checkpoint_and_warms_up(engine: ChatterboxEngine) -> None:
    assert engine.name == "chatterbox-turbo"
    assert engine.sample_rate == 24000
    assert engine.device == "cpu"
    assert engine.max_batch == 4
    assert not engine.busy  # the warm-up request finished and left its slot


@pytest.mark.parametrize("voice", ["built-in", "reference"])
def test_one_request_is_the_librarys_own_generate_bit_for_bit(
    engine: ChatterboxEngine, reference: Path, voice: str
) -> None:
    clip = reference if voice == "reference" else None
    model = engine.model
    conds = engine.conditionals(clip, GenerationParams())
    text = "Hello there, this is one request through the batch."
    torch.manual_seed(7)
    ours = speak(engine, text, clip)
    model.conds = conds
    torch.manual_seed(7)
    with torch.inference_mode():
        library = model.generate(text)[0].numpy()
    np.testing.assert_array_equal(ours, library)
    # Turbo speaks 960 samples a token, three silence tokens included.
    assert len(ours) % 960 == 0 and len(ours) >= 3 * 960


def test_a_reference_is_prepared_once_per_clip_content(
    engine: ChatterboxEngine, reference: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "same-voice-elsewhere.wav"
    shutil.copy(reference, copy)
    with caplog.at_level(logging.INFO, logger="workers.engines.chatterbox"):
        engine.conditionals(copy, GenerationParams())
        engine.conditionals(copy, GenerationParams())
        engine.conditionals(copy, GenerationParams(norm_loudness=False))
    prepared = [record for record in caplog.records if "prepared voice conditionals" in record.getMessage()]
    # The module's earlier tests prepared this content already; only the other loudness setting is new.
    assert len(prepared) == 1 and "same-voice-elsewhere" in prepared[0].getMessage()


def test_a_clip_of_five_seconds_or_less_is_refused_before_the_library_asserts(
    engine: ChatterboxEngine, tmp_path: Path
) -> None:
    clip = tmp_path / "short.wav"
    samples = (0.3 * np.sin(2 * math.pi * 220 * np.arange(4 * 16000) / 16000) * 32767).astype("<i2")
    with wave.open(str(clip), "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(16000)
        output.writeframes(samples.tobytes())
    with pytest.raises(EngineError, match=r"longer than 5 seconds; this one lasts 4\.00 s"):
        engine.submit(ChunkRequest("short", "Hello.", clip, GenerationParams()))
    assert not engine.busy


def test_the_librarys_progress_output_stays_out_of_stdout(
    engine: ChatterboxEngine, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="workers.engines.chatterbox"):
        speak(engine, "Quiet, please.")
    captured = capsys.readouterr()
    assert "S3 Token -> Mel Inference" not in captured.out + captured.err
    assert any("S3 Token -> Mel Inference" in record.getMessage() for record in caplog.records)


@contextmanager
def stop_suppressed(engine: ChatterboxEngine) -> Iterator[None]:
    head = engine.model.t3.speech_head
    kept = float(head.bias[STOP_SPEECH].detach())
    with torch.no_grad():
        head.bias[STOP_SPEECH] = -1e4
    try:
        yield
    finally:
        with torch.no_grad():
            head.bias[STOP_SPEECH] = kept


@contextmanager
def greedy_stops_at_mixed_lengths(engine: ChatterboxEngine, requests: list[ChunkRequest]) -> Iterator[None]:
    """Greedy decoding always takes the stop token, whose logit the builder made a constant above the rest. With it
    suppressed, each row's best other logit is recorded step by step; the stop logit is then put where the rows end
    after the most different numbers of tokens, as far from every recorded logit as it can be, so that the batch's
    rounding cannot move where a row ends."""
    t3 = engine.model.t3
    traces: list[list[float]] = []
    with stop_suppressed(engine):
        hook = t3.speech_head.register_forward_hook(
            lambda _m, _i, out: traces[-1].append(float(out[0, -1, : STOP_SPEECH - 1].max()))
        )
        try:
            for request in requests:
                traces.append([])
                conds = engine.conditionals(request.reference_audio, GREEDY).t3
                t3.inference_turbo(conds, _tokens(engine, request.text), top_k=1, max_gen_len=MAX_NEW_TOKENS)
        finally:
            hook.remove()
        with torch.no_grad():
            t3.speech_head.bias[STOP_SPEECH] = _stop_logit_for_mixed_lengths(traces)
        yield


def _stop_logit_for_mixed_lengths(traces: list[list[float]]) -> float:
    """A row ends at the first step whose best other logit is below the stop logit: of the midpoints between
    recorded logits that end every row after at least one token, the one giving the most different lengths, then
    the widest margin."""
    values = sorted({value for trace in traces for value in trace})
    scored: list[tuple[int, float, float]] = []
    for low, high in itertools.pairwise(values):
        stop_logit = (low + high) / 2
        ends = [next((step for step, value in enumerate(trace) if value < stop_logit), 0) for trace in traces]
        if 0 in ends:  # a row with no token, or one that never ends within the limit
            continue
        margin = min(
            abs(value - stop_logit) for trace, end in zip(traces, ends, strict=True) for value in trace[: end + 1]
        )
        scored.append((len(set(ends)), min(margin, 1e-2), stop_logit))
    assert scored, "no stop logit ends every row within the token limit"
    return max(scored)[2]


def _tokens(engine: ChatterboxEngine, text: str) -> torch.Tensor:
    return turbo_row(engine.model, ChunkRequest("t", text, None, GREEDY), engine.conditionals(None, GREEDY)).text_tokens


@pytest.mark.parametrize("rows", [1, 3, 8])
def test_greedy_rows_decoded_together_give_the_librarys_tokens(
    engine: ChatterboxEngine, reference: Path, rows: int
) -> None:
    voices = [None, reference]
    requests = [
        ChunkRequest(f"row-{index}", TEXTS[index], voices[index % 2], GREEDY, priority=index) for index in range(rows)
    ]
    with greedy_stops_at_mixed_lengths(engine, requests), torch.inference_mode():
        expected = {}
        for request in requests:
            conds = engine.conditionals(request.reference_audio, GREEDY)
            tokens = engine.model.t3.inference_turbo(
                conds.t3, _tokens(engine, request.text), top_k=1, max_gen_len=MAX_NEW_TOKENS
            )
            expected[request.id] = tokens[0].tolist()
        batch = TurboBatch(engine.model, TurboLimits(8, MAX_NEW_TOKENS, 600, 2 << 30), engine.model.watermarker)
        # Rows join at different steps: half at once, the others one by one while the first decode.
        joins = {0: requests[: max(1, rows // 2)]} | {3 * n: [r] for n, r in enumerate(requests[rows // 2 :], 1)}
        got: dict[str, list[int]] = {}
        step = 0
        while step in joins or batch.busy or step < max(joins):
            for request in joins.get(step, []):
                batch.add(turbo_row(engine.model, request, engine.conditionals(request.reference_audio, GREEDY)))
            for row in batch.decode_step():
                got[row.request.id] = row.tokens
            step += 1
        batch.close()
    assert len({len(tokens) for tokens in expected.values()}) > 1 or rows == 1, "lengths should differ"
    for request in requests:
        tokens = got[request.id]
        assert (tokens[:-1] if tokens and tokens[-1] == STOP_SPEECH else tokens) == expected[request.id], request.id


def test_s3gen_groups_rows_by_voice_prompt_shape_at_most_max_rows_at_a_time() -> None:
    def ref(prompt_tokens: int) -> dict[str, Any]:
        return {"prompt_token": torch.zeros(1, prompt_tokens), "prompt_feat": torch.zeros(1, 2 * prompt_tokens, 80)}

    rows = [VocoderInput(torch.tensor([index]), ref(shape)) for index, shape in enumerate([10, 20, 10, 10, 20, 10])]
    calls: list[list[int]] = []

    def voice(group: list[VocoderInput]) -> list[torch.Tensor]:
        calls.append([int(row.tokens[0]) for row in group])
        return [row.tokens.float() for row in group]

    out = by_prompt_shape(rows, voice, 2)
    assert calls == [[0, 2], [3, 5], [1, 4]]
    assert [int(waveform[0]) for waveform in out] == [0, 1, 2, 3, 4, 5]


def test_s3gen_over_several_rows_gives_each_its_length_and_level(engine: ChatterboxEngine, reference: Path) -> None:
    generator = torch.Generator().manual_seed(3)
    tokens = [torch.randint(0, 6561, (n,), generator=generator) for n in (9, 35, 20)]
    conds = [engine.conditionals(voice, GenerationParams()).gen for voice in (None, reference, None)]
    s3gen = engine.model.s3gen
    with torch.inference_mode():
        alone = [
            s3gen.inference(speech_tokens=t, ref_dict=c, n_cfm_timesteps=2)[0][0]
            for t, c in zip(tokens, conds, strict=True)
        ]
        together = vocode(
            s3gen,
            [VocoderInput(t, c) for t, c in zip(tokens, conds, strict=True)],
            n_timesteps=2,
            meanflow=True,
            max_rows=8,
        )
    for single, batched, row_tokens in zip(alone, together, tokens, strict=True):
        assert len(batched) == len(single) == 960 * len(row_tokens)
        level, batched_level = float(single.pow(2).mean().sqrt()), float(batched.pow(2).mean().sqrt())
        # The flow and the vocoder draw random noise, and a batch draws it differently: the waveforms differ by
        # that noise (measured here at about an eighth of the level), never in length or loudness.
        assert abs(batched_level - level) < 0.05 * level
        assert float((batched - single).pow(2).mean().sqrt()) < 0.35 * level


def test_a_cancelled_row_leaves_the_batch_at_the_next_step(engine: ChatterboxEngine) -> None:
    with stop_suppressed(engine):  # neither row would stop on its own
        for request_id in ("kept", "cancelled"):
            engine.submit(ChunkRequest(request_id, TEXTS[1], None, GREEDY))
        engine.step()
        engine.step()
        assert sorted(engine.batch.decoding) == ["cancelled", "kept"]
        engine.cancel("cancelled")
        assert engine.batch.decoding == ["kept"]
        engine.cancel("kept")
        assert not engine.busy


def test_output_carries_the_perth_watermark(engine: ChatterboxEngine) -> None:
    import perth

    audio = speak(engine, "This speech is watermarked as the library does it.")
    detector = perth.PerthImplicitWatermarker()
    assert detector.get_watermark(audio, sample_rate=24000) > 0.5
    tokens = torch.randint(0, 6561, (40,), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        raw = engine.model.s3gen.inference(speech_tokens=tokens, ref_dict=engine.conditionals(None, GREEDY).gen)
    assert detector.get_watermark(raw[0][0].numpy(), sample_rate=24000) < 0.5


def test_pieces_come_back_per_request(engine: ChatterboxEngine) -> None:
    requests = [ChunkRequest(f"r{i}", text, None, GenerationParams()) for i, text in enumerate(TEXTS[:3])]
    for request in requests:
        engine.submit(request)
    finals = []
    while engine.busy:
        for output in engine.step():
            assert isinstance(output, AudioPiece)
            finals.append(output.request_id)
    assert sorted(finals) == ["r0", "r1", "r2"]


def test_a_voices_conditioning_runs_through_t3_once_and_is_restored_for_its_next_chunks(
    engine: ChatterboxEngine, reference: Path
) -> None:
    model = engine.model
    prompt_lengths: list[int] = []

    def record(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        if kwargs["inputs_embeds"].shape[1] > 1:  # a prompt, not a decode step
            prompt_lengths.append(kwargs["inputs_embeds"].shape[1])

    voices = [None, reference, None, reference]
    requests = [ChunkRequest(f"r{i}", TEXTS[i], voice, GREEDY) for i, voice in enumerate(voices)]
    rows = [turbo_row(model, request, engine.conditionals(request.reference_audio, GREEDY)) for request in requests]
    batch = TurboBatch(model, TurboLimits(4, 4, 600, 1 << 30), model.watermarker)
    hook = model.t3.tfmr.register_forward_pre_hook(record, with_kwargs=True)
    try:
        for row in rows:
            batch.add(row)
        with torch.inference_mode():
            batch.decode_step()
    finally:
        hook.remove()
        batch.close()
    with torch.inference_mode():
        cond_lengths = [model.t3.prepare_conditioning(row.t3_cond).shape[1] for row in rows]
    texts = [row.text_tokens.shape[1] + 1 for row in rows]  # the text, then the start token
    # Each voice's conditioning once (hundreds of positions), then every row's text alone.
    assert prompt_lengths == [cond_lengths[0], texts[0], cond_lengths[1], texts[1], texts[2], texts[3]]


def test_rows_decoding_together_run_packed_projections_reading_their_voice_once_and_a_lone_row_the_librarys_own(
    engine: ChatterboxEngine,
) -> None:
    model = engine.model
    library_rows: list[int] = []
    packed_rows: list[int] = []
    shared: list[tuple[int, list[tuple[object, int]]]] = []

    def attention_spy(
        module: Any, query: torch.Tensor, key: Any, value: Any, mask: Any, shared_prefixes: Any = None, **kwargs: Any
    ) -> Any:
        if shared_prefixes is not None:
            shared.append((query.shape[0], [(group.rows, group.length) for group in shared_prefixes]))
        return shared_prefix_attention(module, query, key, value, mask, shared_prefixes=shared_prefixes, **kwargs)

    def record(module: torch.nn.Module, args: tuple[torch.Tensor, ...], _out: Any) -> None:
        if isinstance(module, PackedConv1D):
            packed_rows.append(args[0].shape[0])

    batch = TurboBatch(model, TurboLimits(4, 6, 600, 1 << 30), model.watermarker)
    library_hook = model.t3.tfmr.h[0].attn.c_attn.register_forward_pre_hook(
        lambda _module, args: library_rows.append(args[0].shape[0])
    )
    packed_hook = torch.nn.modules.module.register_module_forward_hook(record)
    AttentionInterface.register(SHARED_PREFIX_ATTENTION, attention_spy)
    try:
        with stop_suppressed(engine), torch.inference_mode():
            conds = engine.conditionals(None, GREEDY)
            for index in range(3):
                batch.add(turbo_row(model, ChunkRequest(f"r{index}", TEXTS[index], None, GREEDY), conds))
            finished: list[TurboRow] = []
            while len(finished) < 3:
                finished += batch.decode_step()
            batch.add(turbo_row(model, ChunkRequest("alone", TEXTS[3], None, GREEDY), conds))
            while not batch.decode_step():
                pass
    finally:
        AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)
        library_hook.remove()
        packed_hook.remove()
        batch.close()
    # The three rows' 6 decode steps ran through the packed copy (4 projections a layer), never the library's T3,
    # which ran the prompts (the voice's conditioning, then each row's text) and the lone row's 6 steps.
    assert packed_rows == [3] * (6 * 4 * len(model.t3.tfmr.h))
    assert library_rows == [1] * (2 + 1 + 1 + 1 + 6)
    assert not any(isinstance(module, PackedConv1D) for module in model.t3.tfmr.modules())
    # Every layer of those steps read the voice's conditioning once for the three rows of its one voice.
    with torch.inference_mode():
        conditioning = model.t3.prepare_conditioning(conds.t3).shape[1]
    assert shared == [(3, [(slice(0, 3), conditioning)])] * (6 * len(model.t3.tfmr.h))
    assert model.t3.tfmr.config._attn_implementation != SHARED_PREFIX_ATTENTION


@contextmanager
def s3gen_flow_hooked(engine: ChatterboxEngine, before: Any) -> Iterator[None]:
    """`before` runs in S3Gen's thread as each flow call starts (its encoder's forward)."""

    def pre_hook(_module: Any, _args: Any) -> None:
        before()

    hook = engine.model.s3gen.flow.encoder.register_forward_pre_hook(pre_hook)
    try:
        yield
    finally:
        hook.remove()


def test_t3_goes_on_decoding_while_s3gen_voices(engine: ChatterboxEngine) -> None:
    decoded_during_flow: list[bool] = []
    flow_running = threading.Event()
    done_hook = engine.model.s3gen.flow.decoder.register_forward_hook(lambda _module, _args, _out: flow_running.clear())
    head_hook = engine.model.t3.speech_head.register_forward_hook(
        lambda _module, _args, _out: decoded_during_flow.append(flow_running.is_set())
    )
    batch = TurboBatch(engine.model, TurboLimits(1, 80, 600, 1 << 30, stream_tokens=10), engine.model.watermarker)
    try:
        with stop_suppressed(engine), s3gen_flow_hooked(engine, flow_running.set):
            batch.add(turbo_row(engine.model, ChunkRequest("s", TEXTS[1], None, GREEDY, stream=True),
                                engine.conditionals(None, GREEDY)))  # fmt: skip
            pieces = []
            while batch.busy:
                pieces += [output for output in batch.step() if isinstance(output, AudioPiece)]
    finally:
        done_hook.remove()
        head_hook.remove()
        batch.close()
    assert len(pieces) >= 3 and pieces[-1].final
    # Decode steps ran while a streamed piece's flow was running in S3Gen's thread.
    assert any(decoded_during_flow)


def test_on_a_cpu_s3gen_has_a_thread_per_core_below_t3s_priority(engine: ChatterboxEngine) -> None:
    # The batches other tests build are closed, so what is left are this module's engine's, on 2 threads.
    voicing = {thread.name: thread.native_id for thread in threading.enumerate() if thread.name.startswith("s3gen-")}
    assert sorted(voicing) == ["s3gen-0", "s3gen-1"]
    assert {os.getpriority(os.PRIO_PROCESS, tid or 0) for tid in voicing.values()} == {CPU_VOICER_NICENESS}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < CPU_VOICER_NICENESS


def test_a_chunk_cancelled_while_s3gen_voices_it_sends_nothing(engine: ChatterboxEngine) -> None:
    release = threading.Event()
    with s3gen_flow_hooked(engine, lambda: release.wait(60)):
        engine.submit(ChunkRequest("dropped", "Hello.", None, GREEDY))
        engine.submit(ChunkRequest("kept", "Hello.", None, GREEDY))
        outputs = engine.step()
        while engine.batch.decoding:  # both decode; S3Gen then holds at its first flow call
            outputs += engine.step()
        engine.cancel("dropped")
        release.set()
        while engine.busy:
            outputs += engine.step()
    assert [(output.request_id, output.final) for output in outputs if isinstance(output, AudioPiece)] == [
        ("kept", True)
    ]


def test_s3gen_failing_fails_its_chunk_and_a_streamed_one_leaves_the_batch(engine: ChatterboxEngine) -> None:
    def fail() -> None:
        raise RuntimeError("flow broke")

    with stop_suppressed(engine), s3gen_flow_hooked(engine, fail):
        engine.submit(ChunkRequest("streamed", TEXTS[1], None, GREEDY, stream=True))
        outputs = []
        while engine.busy:
            outputs += engine.step()
    [failure] = outputs
    assert isinstance(failure, RequestFailed) and failure.request_id == "streamed"
    assert "flow broke" in str(failure.error)
    assert engine.batch.decoding == []


STREAM_TOKENS = 100


def streamed_and_whole(engine: ChatterboxEngine) -> tuple[list[tuple[int, Audio]], Audio]:
    """A greedy chunk of exactly STREAM_TOKENS + 1 tokens, streamed (pieces with the step each came out at) and
    voiced whole, by two batches of the real model."""
    results = {}
    for stream in (True, False):
        batch = TurboBatch(
            engine.model, TurboLimits(1, STREAM_TOKENS, 600, 1 << 30, stream_tokens=25), engine.model.watermarker
        )
        request = ChunkRequest("chunk", TEXTS[1], None, GREEDY, stream=stream)
        batch.add(turbo_row(engine.model, request, engine.conditionals(None, GREEDY)))
        pieces: list[tuple[int, Audio]] = []
        step = 0
        while batch.busy:
            step += 1
            pieces += [(step, output.samples) for output in batch.step() if isinstance(output, AudioPiece)]
        batch.close()
        results[stream] = pieces
    [(_, whole)] = results[False]
    return results[True], whole


@pytest.fixture(scope="module")
def streamed(engine: ChatterboxEngine) -> tuple[list[tuple[int, Audio]], Audio]:
    with stop_suppressed(engine):
        return streamed_and_whole(engine)


def test_a_streamed_chunk_comes_in_pieces_from_its_25th_token_and_loses_none(
    streamed: tuple[list[tuple[int, Audio]], Audio],
) -> None:
    pieces, whole = streamed
    first_step, _ = pieces[0]
    # Voiced from the 25th token on, beside the decoding: the first piece comes while the chunk is still decoding.
    assert first_step <= STREAM_TOKENS
    assert len(pieces) >= 3
    audio = np.concatenate([samples for _, samples in pieces])
    # Every token is voiced, the three silence tokens generate appends included, as when voiced whole.
    assert len(audio) == len(whole) == (STREAM_TOKENS + 1 + 3) * 960


def test_a_streamed_chunk_sounds_like_the_whole_one(streamed: tuple[list[tuple[int, Audio]], Audio]) -> None:
    pieces, whole = streamed
    audio = np.concatenate([samples for _, samples in pieces])
    level, streamed_level = float(np.sqrt(np.mean(whole**2))), float(np.sqrt(np.mean(audio**2)))
    # Same tokens; the flow's noise differs (drawn once per stream, per call when whole) and each piece's flow sees
    # only the tokens so far, so the waveforms differ by about what two draws of noise do, never in level.
    assert abs(streamed_level - level) < 0.1 * level
    assert float(np.sqrt(np.mean((audio - whole) ** 2))) < 0.5 * level


def test_streamed_pieces_meet_without_a_click_or_a_gap(streamed: tuple[list[tuple[int, Audio]], Audio]) -> None:
    pieces, _ = streamed
    audio = np.concatenate([samples for _, samples in pieces])
    seams = np.cumsum([len(samples) for _, samples in pieces])[:-1]
    jumps = np.abs(np.diff(audio))
    inside = np.delete(jumps, np.concatenate([seams - 2, seams - 1, seams]))
    for seam in seams:
        assert jumps[seam - 1] <= np.percentile(inside, 99.9), f"a click at sample {seam}"
    window = 240  # 10 ms
    energy = np.convolve(audio**2, np.ones(window) / window, mode="valid")
    typical = float(np.median(energy))
    for seam in seams:
        around = energy[max(0, seam - window) : seam + window]
        assert around.min() > 0.05 * typical, f"a gap at sample {seam}"


def test_streamed_audio_carries_the_watermark(streamed: tuple[list[tuple[int, Audio]], Audio]) -> None:
    import perth

    pieces, _ = streamed
    audio = np.concatenate([samples for _, samples in pieces])
    assert perth.PerthImplicitWatermarker().get_watermark(audio, sample_rate=24000) > 0.5
