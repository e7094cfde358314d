"""Token-level streaming, measured: the time to the first audio byte of `/v1/audio/speech` against the time to the
whole response, for one-chunk requests of a few hundred speech tokens, with 1 and with 8 concurrent streams.

The real library on a random-weight Turbo checkpoint (bench/turbo_stack.py; noise-like speech), through the whole
service: API, Redis, a worker whose engine process decodes the rows together and voices each every STREAM_TOKENS
(then twice as many, and so on). Each request is one chunk, so without streaming its first byte would wait for all
of it. Target here (2 CPU cores): at 1 stream, the first byte within 25 % of the chunk's time.

Run: `python -m bench.streaming`.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.texts import SENTENCES
from bench.turbo_stack import turbo_checkpoint, turbo_stack

RUNS_ALONE = 4
CONCURRENT = 8


def one_stream(base_url: str, text: str) -> tuple[float, float, float]:
    """(seconds to the first audio byte, seconds to the last, seconds of audio) for one pcm speech request."""
    body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"}
    started = time.perf_counter()
    first = None
    size = 0
    with httpx.stream("POST", f"{base_url}/v1/audio/speech", json=body, timeout=3600) as response:
        response.raise_for_status()
        for data in response.iter_bytes():
            if data and first is None:
                first = time.perf_counter() - started
            size += len(data)
    assert first is not None
    return first, time.perf_counter() - started, size / 2 / 24000


def report(label: str, runs: list[tuple[float, float, float]]) -> float:
    ratios = [first / whole for first, whole, _ in runs]
    first_p50 = statistics.median(first for first, _, _ in runs)
    whole_p50 = statistics.median(whole for _, whole, _ in runs)
    audio = statistics.median(seconds for _, _, seconds in runs)
    print(
        f"{label}: first byte p50 {first_p50:.2f} s, whole chunk p50 {whole_p50:.2f} s ({audio:.1f} s of audio), "
        f"first / whole p50 {statistics.median(ratios):.2f} (max {max(ratios):.2f})"
    )
    return statistics.median(ratios)


def main() -> None:
    checkpoint = turbo_checkpoint()
    print(f"checkpoint {checkpoint} (random weights: noise-like speech)")
    with turbo_stack(checkpoint, ENGINE_MAX_BATCH="8", WORKER_CONCURRENCY="8", ENGINE_THREADS="2") as stack:
        one_stream(stack.base_url, "Warm up.")
        alone = [one_stream(stack.base_url, text) for text in SENTENCES[:RUNS_ALONE]]
        with ThreadPoolExecutor(CONCURRENT) as pool:
            together = list(pool.map(lambda text: one_stream(stack.base_url, text), SENTENCES[:CONCURRENT]))
    ratio = report("1 stream", alone)
    report(f"{CONCURRENT} concurrent streams", together)
    print(f"1 stream: first byte at {ratio:.0%} of the chunk's time (target: at most 25 %): "
          f"{'met' if ratio <= 0.25 else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
