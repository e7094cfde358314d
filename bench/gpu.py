"""The GPU check, prepared for a machine with a GPU (bench/gpu/README.md says how to run it in one go).

On a random-weight Turbo checkpoint built on the spot (bench/checkpoint.py; noise-like speech, real cost per token),
it measures, for the library's own `generate` and for the service's engine (the batching ChatterboxEngine, driven
in this process, without Redis or HTTP in the way):

- load time, voice conditionals time, T3 tokens per second, S3Gen seconds per second of audio, real-time factor,
  peak GPU memory (library);
- throughput (audio seconds per wall second) with 1, 4, 8 and 16 requests at once against the library one after
  another, and time to the first audio of streamed requests with 1 and 8 at once (engine).

Targets from the issues, printed with the figures: 16 concurrent requests at least 6x the sequential library;
first audio with batching no worse than 2x the unbatched engine's; streamed first audio at most 0.3 s alone and
under 1 s with 8 streams. `--quick` runs a small version of it all on the CPU, to check the script itself.

Run: `python -m bench.gpu --out DIR [--quick]`; the figures also go to DIR/gpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.checkpoint import BENCH_MEAN_TOKENS, BENCH_MIN_TOKENS, REFERENCE_CLIP, BuildRequest, build
from bench.texts import SENTENCES

os.environ.setdefault("TQDM_DISABLE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="a small run on any device, to check the script")
    parser.add_argument("--reference", type=Path, help="a spoken clip of more than 5 s (default: espeak speaking)")
    args = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    levels = [1, 2] if args.quick else [1, 4, 8, 16]
    mean_tokens, min_tokens = (20, 0) if args.quick else (BENCH_MEAN_TOKENS, BENCH_MIN_TOKENS)
    args.out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
    started = time.perf_counter()
    request = BuildRequest("turbo", args.out / "turbo", mean_tokens, min_tokens, reference=args.reference)
    checkpoint = build(request)
    figures["checkpoint_build_s"] = time.perf_counter() - started
    texts = (SENTENCES * 2)[: max(levels)]
    figures["library"] = library_figures(checkpoint, device, texts)
    figures["engine"] = engine_figures(checkpoint, device, texts, levels)
    (args.out / "gpu.json").write_text(json.dumps(figures, indent=2))
    report(figures, levels)


def _peak_gpu_mb() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")


def library_figures(checkpoint: Path, device: str, texts: list[str]) -> dict[str, Any]:
    import torch
    from chatterbox.tts_turbo import ChatterboxTurboTTS, punc_norm

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    model = ChatterboxTurboTTS.from_local(str(checkpoint), device)
    load_s = time.perf_counter() - started
    with torch.inference_mode():
        model.generate("Warm up.")
        started = time.perf_counter()
        model.prepare_conditionals(str(checkpoint / REFERENCE_CLIP))
        _sync(device)
        conditionals_s = time.perf_counter() - started
        tokens_done, t3_s, s3gen_s, audio_s = 0, 0.0, 0.0, 0.0
        for text in texts[:4]:
            ids = model.tokenizer(punc_norm(text), return_tensors="pt").input_ids.to(device)
            started = time.perf_counter()
            tokens = model.t3.inference_turbo(model.conds.t3, ids)
            _sync(device)
            t3_s += time.perf_counter() - started
            tokens_done += tokens.shape[1]
            speech = torch.cat([tokens[0][tokens[0] < 6561], torch.tensor([4299] * 3, device=device)])
            started = time.perf_counter()
            wav, _ = model.s3gen.inference(speech_tokens=speech, ref_dict=model.conds.gen, n_cfm_timesteps=2)
            _sync(device)
            s3gen_s += time.perf_counter() - started
            audio_s += wav.shape[-1] / model.sr
        started = time.perf_counter()
        sequential_audio = 0.0
        latencies = []
        for text in texts:
            begun = time.perf_counter()
            sequential_audio += model.generate(text).shape[-1] / model.sr
            latencies.append(time.perf_counter() - begun)
        sequential_s = time.perf_counter() - started
    figures = {
        "load_s": load_s,
        "conditionals_s": conditionals_s,
        "t3_tokens_per_s": tokens_done / t3_s,
        "s3gen_s_per_audio_s": s3gen_s / audio_s,
        "real_time_factor": sequential_s / sequential_audio,
        "sequential_throughput": sequential_audio / sequential_s,
        "latency_p50_s": statistics.median(latencies),
        "peak_gpu_mb": _peak_gpu_mb(),
    }
    del model
    _free(device)
    return figures


def engine_figures(checkpoint: Path, device: str, texts: list[str], levels: list[int]) -> dict[str, Any]:
    import torch

    from core.settings import Settings
    from workers.engines.base import AudioPiece, ChunkRequest, GenerationParams
    from workers.engines.chatterbox import ChatterboxEngine

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    settings = Settings.model_construct(
        tts_engine="chatterbox",
        chatterbox_variant="turbo",
        chatterbox_checkpoint_dir=checkpoint,
        chatterbox_device=device,
        engine_max_batch=max(levels),
    )
    engine = ChatterboxEngine(settings)
    started = time.perf_counter()
    engine.load()
    figures: dict[str, Any] = {
        "load_and_warm_up_s": time.perf_counter() - started,
        "throughput": {},
        "first_done_s": {},
    }
    for level in levels:
        for index, text in enumerate(texts[:level]):
            engine.submit(ChunkRequest(f"r{index}", text, None, GenerationParams()))
        started = time.perf_counter()
        samples, first_done = 0, None
        while engine.busy:
            for output in engine.step():
                if isinstance(output, AudioPiece):
                    samples += len(output.samples)
                    first_done = first_done or time.perf_counter() - started
        wall = time.perf_counter() - started
        figures["throughput"][level] = samples / engine.sample_rate / wall
        figures["first_done_s"][level] = first_done
    figures["first_audio_s"] = {}
    for streams in (1, 8):
        figures["first_audio_s"][streams] = first_audio(engine, texts[:streams])
    figures["peak_gpu_mb"] = _peak_gpu_mb()
    engine.unload()
    return figures


def first_audio(engine: Any, texts: list[str]) -> float:
    """Median seconds from submitting streamed requests together to each one's first piece."""
    from workers.engines.base import AudioPiece, ChunkRequest, GenerationParams

    started = time.perf_counter()
    for index, text in enumerate(texts):
        engine.submit(ChunkRequest(f"s{index}", text, None, GenerationParams(), stream=True))
    firsts: dict[str, float] = {}
    while engine.busy:
        for output in engine.step():
            if isinstance(output, AudioPiece):
                firsts.setdefault(output.request_id, time.perf_counter() - started)
    return statistics.median(firsts.values())


def report(figures: dict[str, Any], levels: list[int]) -> None:
    library, engine = figures["library"], figures["engine"]
    print(f"device: {figures['device']}; checkpoint built in {figures['checkpoint_build_s']:.0f} s (random weights)")
    print(
        f"library generate: load {library['load_s']:.1f} s, conditionals {library['conditionals_s']:.2f} s, "
        f"T3 {library['t3_tokens_per_s']:.0f} tokens/s, S3Gen {library['s3gen_s_per_audio_s']:.3f} s per audio s, "
        f"RTF {library['real_time_factor']:.3f}, peak GPU {library['peak_gpu_mb']:.0f} MB"
    )
    baseline = library["sequential_throughput"]
    for level in levels:
        throughput = engine["throughput"][level]
        print(f"engine, {level:2d} requests at once: {throughput:.2f} audio s/s = {throughput / baseline:.2f}x")
    top = engine["throughput"][max(levels)] / baseline
    print(f"  {max(levels)} at once: {top:.2f}x the sequential library (GPU target: at least 6x at 16)")
    first, alone_done = engine["first_done_s"][max(levels)], engine["first_done_s"][1]
    print(f"  first audio (whole chunks): {first:.2f} s with {max(levels)} at once, {alone_done:.2f} s alone = "
          f"{first / alone_done:.2f}x (target: at most 2x)")  # fmt: skip
    alone, eight = engine["first_audio_s"][1], engine["first_audio_s"][8]
    print(f"streamed first audio: {alone:.3f} s alone (target 0.3 s), {eight:.3f} s with 8 (target under 1 s)")
    print(f"engine peak GPU {engine['peak_gpu_mb']:.0f} MB")


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _free(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
