"""Continuous batching, measured: the service's throughput with 1 to 16 concurrent jobs through real workers,
against chatterbox-tts's own `generate` called one job after another on the same inputs, in one run.

At each level N, N clients send JOBS_PER_CLIENT x N jobs (at least 16), each client its next job as soon as its
last is done, so N are in flight until the last job is sent (a server under steady load); then they drain. Two
rates are reported. "Steady" is the rate while all N are in flight: the audio made from the start to the last
job's sending, a job still running then counted in proportion to the time it had run. "Whole run" is all the audio
over the whole time, drain included: the last jobs decoding with fewer and fewer beside them. `--burst` sends N jobs
at once instead and waits for all, which is all drain.

Both sides run the real library on a random-weight Turbo checkpoint whose chunks are about 200 speech tokens, nearly
steady (bench/turbo_stack.py: the stop token is held off by position, then comes after 20 more on average; with
geometric lengths, as before, two runs of the same code gave 2.83x and 2.05x). Every job is one chunk of text,
sampled at the default settings, so the two sides speak slightly different lengths of the same texts: throughput is
seconds of audio per wall-clock second. Jobs go
through `/runsync` (the whole chunk voiced at once; streaming's extra S3Gen work is bench/streaming.py's subject).
The library side runs in a process of its own, so the two models are never in memory together: half its jobs
before the service's and half after, so that a host whose speed drifts over the run (shared 2-core hosts here did,
by a fifth within the hour) weighs on both sides alike.

Run: `python -m bench.batching [--levels 1,2,4,8,16] [--burst]`. Target here (2 CPU cores): 8 concurrent jobs reach at
least 2.5x the sequential library's throughput (steady).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.texts import SENTENCES
from bench.turbo_stack import turbo_checkpoint, turbo_stack

THREADS = 2
JOBS_PER_CLIENT = 3
LIBRARY_JOBS = 16
MAX_RUNSYNC_WAIT_MS = 300_000
POLL_S = 0.2


@dataclass(frozen=True)
class Job:
    sent_s: float
    """Since the level started."""
    done_s: float
    audio_s: float

    @property
    def latency_s(self) -> float:
        return self.done_s - self.sent_s


@dataclass(frozen=True)
class Level:
    in_flight: int
    jobs: list[Job]

    @property
    def wall_s(self) -> float:
        return max(job.done_s for job in self.jobs)

    @property
    def throughput(self) -> float:
        """Audio seconds per wall second over the whole run, the drain at the end included."""
        return sum(job.audio_s for job in self.jobs) / self.wall_s

    @property
    def steady_throughput(self) -> float | None:
        """Audio seconds per wall second while all `in_flight` jobs were running: from the start to the sending of
        the last job, a job running across that moment counted for the part of its time before it. None for a
        burst (every job sent at once: all drain)."""
        if len(self.jobs) <= self.in_flight:
            return None
        end = max(job.sent_s for job in self.jobs)
        made = sum(job.audio_s * (min(job.done_s, end) - job.sent_s) / job.latency_s for job in self.jobs)
        return made / end

    @property
    def latencies_s(self) -> list[float]:
        return [job.latency_s for job in self.jobs]


def library_sequential(checkpoint: Path, texts: list[str]) -> dict[str, object]:
    """In this process: chatterbox's own generate, one text after the other (the baseline)."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch
    from chatterbox.tts_turbo import ChatterboxTurboTTS

    torch.set_num_threads(THREADS)
    model = ChatterboxTurboTTS.from_local(str(checkpoint), "cpu")
    with torch.inference_mode():
        model.generate("Warm up.")
        latencies, audio = [], 0.0
        started = time.perf_counter()
        for text in texts:
            begun = time.perf_counter()
            wav = model.generate(text)
            latencies.append(time.perf_counter() - begun)
            audio += wav.shape[-1] / model.sr
        wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"wall_s": wall, "audio_s": audio, "latencies_s": latencies, "peak_rss_mb": peak_mb}


def service_level(base_url: str, texts: list[str], in_flight: int) -> Level:
    level_started = time.perf_counter()

    def one(text: str) -> Job:
        started = time.perf_counter()
        with httpx.Client(base_url=base_url, timeout=3600) as client:
            # A job still running when /runsync's longest wait ends is polled, as the runpod SDK does.
            state = client.post("/runsync", params={"wait": MAX_RUNSYNC_WAIT_MS}, json={"input": {"text": text}}).json()
            while state.get("status") in ("IN_QUEUE", "IN_PROGRESS"):
                time.sleep(POLL_S)
                state = client.get(f"/status/{state['id']}").json()
        if state.get("status") != "COMPLETED":
            raise RuntimeError(f"job did not complete: {state}")
        done = time.perf_counter()
        return Job(started - level_started, done - level_started, float(state["output"]["duration_sec"]))

    with ThreadPoolExecutor(in_flight) as pool:
        return Level(in_flight, list(pool.map(one, texts)))


def _library_half(checkpoint: Path, half: int) -> dict[str, Any]:
    """library_sequential over one half of the texts, in a process of its own."""
    command = [sys.executable, "-m", "bench.batching", "--library-baseline", str(checkpoint)]
    run = subprocess.run([*command, "--library-half", str(half)], check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def _rate(library: dict[str, Any]) -> float:
    return float(library["audio_s"]) / float(library["wall_s"])


def _cycled(texts: list[str], count: int) -> list[str]:
    return [texts[index % len(texts)] for index in range(count)]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="1,2,4,8,16")
    parser.add_argument("--burst", action="store_true", help="N jobs at once per level, instead of N in flight")
    parser.add_argument("--library-baseline", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--library-half", type=int, choices=(0, 1), help=argparse.SUPPRESS)
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    texts = (SENTENCES * 2)[:LIBRARY_JOBS]
    halves = [texts[: LIBRARY_JOBS // 2], texts[LIBRARY_JOBS // 2 :]]
    if args.library_baseline:
        print(json.dumps(library_sequential(args.library_baseline, halves[args.library_half])))
        return
    checkpoint = turbo_checkpoint()
    print(f"checkpoint {checkpoint} (random weights: noise-like speech); {os.cpu_count()} CPU cores")
    library_halves = [_library_half(checkpoint, 0)]
    results: list[Level] = []
    with turbo_stack(
        checkpoint,
        ENGINE_MAX_BATCH=str(max(levels)),
        WORKER_CONCURRENCY=str(max(levels)),
        ENGINE_THREADS=str(THREADS),
    ) as stack:
        service_level(stack.base_url, texts[:1], 1)  # warm: conditionals, allocator
        for jobs in levels:
            level_texts = texts[:jobs] if args.burst else _cycled(texts, max(len(texts), JOBS_PER_CLIENT * jobs))
            results.append(service_level(stack.base_url, level_texts, jobs))
        engine_peak = stack.engine_peak_rss_mb()
    library_halves.append(_library_half(checkpoint, 1))
    audio = sum(half["audio_s"] for half in library_halves)
    library_throughput = audio / sum(half["wall_s"] for half in library_halves)
    latencies = [latency for half in library_halves for latency in half["latencies_s"]]
    print(
        f"library generate, one after another: {len(texts)} jobs, half before the service and half after, "
        f"{audio:.1f} s of audio = {library_throughput:.3f} audio s/s (before {_rate(library_halves[0]):.3f}, "
        f"after {_rate(library_halves[1]):.3f}); latency p50 {statistics.median(latencies):.1f} s; "
        f"peak RSS {max(half['peak_rss_mb'] for half in library_halves):.0f} MB"
    )
    print("each job is one chunk, voiced whole: its first audio is its latency")
    shape = "N jobs sent at once" if args.burst else f"{JOBS_PER_CLIENT} x N jobs (at least {len(texts)}), N in flight"
    print(f"{shape}; audio s/s steady (all N in flight) and over the whole run (drain included):")
    print("concurrent jobs | steady | vs library | whole run | vs library | latency p50 | p95")
    for level in results:
        p50, p95 = statistics.median(level.latencies_s), _percentile(level.latencies_s, 0.95)
        whole, steady = level.throughput, level.steady_throughput
        steady_columns = "     - |          -"
        if steady is not None:
            steady_columns = f"{steady:6.3f} | {steady / library_throughput:9.2f}x"
        print(
            f"{level.in_flight:15d} | {steady_columns} | {whole:9.3f} "
            f"| {whole / library_throughput:9.2f}x | {p50:9.1f} s | {p95:5.1f} s"
        )
    print(f"engine process peak RSS {engine_peak:.0f} MB")
    at_eight = next((level for level in results if level.in_flight == 8), None)
    steady_at_eight = None if at_eight is None else at_eight.steady_throughput
    if steady_at_eight is not None:
        ratio = steady_at_eight / library_throughput
        print(f"8 concurrent jobs, steady: {ratio:.2f}x the sequential library (target: at least 2.5x): "
              f"{'met' if ratio >= 2.5 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
