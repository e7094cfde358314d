"""The API under load, with a real uvicorn server, a real worker and Redis on this machine.

1. Submits per second to `/run` from 64 concurrent keep-alive clients (target: at least 1,000/s on 2 cores).
   The clients are a minimal HTTP/1.1 loop on asyncio streams, so the load generator costs as little CPU as
   possible on the same 2 cores; no worker consumes while this runs, so only the API and Redis are measured.
2. Time to first audio byte against total time for a 5-chunk streaming `/v1/audio/speech`, against the engine's
   own time for the first chunk (target: first byte no later than that plus 50 ms).

Run: `python -m bench.api`.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import redis

from core.settings import Settings
from tests.support.processes import ManagedProcess, start_api, start_worker
from tests.support.s3 import free_port
from text.chunker import split_into_chunks
from workers.engines.base import synthesize_one
from workers.engines.espeak import EspeakEngine

CLIENTS = 64
SUBMIT_SECONDS = 5.0
STREAM_RUNS = 20
REDIS_URL = "redis://127.0.0.1:6379/13"
SENTENCE = "The quick brown fox jumps over the lazy dog while the band plays a slow and quiet song."
FIVE_CHUNKS = " ".join([SENTENCE * 3] * 5)


async def _client(host: str, port: int, request: bytes, deadline: float, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"submit failed: {head[:80]!r} {body[:200]!r}")
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def submit_rate(port: int) -> tuple[float, list[float]]:
    body = json.dumps({"input": {"text": "Hello there."}}).encode()
    request = (
        f"POST /run HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    warm_up_deadline = time.perf_counter() + 1.0
    await asyncio.gather(*(_client("127.0.0.1", port, request, warm_up_deadline, []) for _ in range(CLIENTS)))
    started = time.perf_counter()
    deadline = started + SUBMIT_SECONDS
    await asyncio.gather(*(_client("127.0.0.1", port, request, deadline, latencies) for _ in range(CLIENTS)))
    return len(latencies) / (time.perf_counter() - started), latencies


def first_chunk_engine_seconds(settings: Settings) -> float:
    engine = EspeakEngine(settings)
    engine.load()
    first = split_into_chunks(FIVE_CHUNKS, settings.max_chunk_chars)[0]
    samples = []
    for _ in range(STREAM_RUNS):
        started = time.perf_counter()
        synthesize_one(engine, first)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def stream_timings(base_url: str) -> tuple[list[float], list[float]]:
    first_bytes, totals = [], []
    body = {"model": "tts-1", "input": FIVE_CHUNKS, "voice": "alloy"}
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for _ in range(STREAM_RUNS + 2):
            started = time.perf_counter()
            with client.stream("POST", "/v1/audio/speech", json=body) as response:
                response.raise_for_status()
                chunks = response.iter_raw()
                next(chunks)
                first = time.perf_counter() - started
                for _chunk in chunks:
                    pass
            first_bytes.append(first)
            totals.append(time.perf_counter() - started)
    return first_bytes[2:], totals[2:]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp)
        env = {"REDIS_URL": REDIS_URL, "DATA_DIR": str(log_dir / "data"), "MAX_QUEUE_DEPTH": "10000000"}
        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        port = free_port()
        api: ManagedProcess = start_api({**env, "LOG_LEVEL": "WARNING"}, log_dir, port)
        try:
            rate, latencies = asyncio.run(submit_rate(port))
            client.flushdb()
            worker = start_worker(env, log_dir)
            try:
                first_bytes, totals = stream_timings(f"http://127.0.0.1:{port}")
            finally:
                worker.stop()
        finally:
            api.stop()
            client.flushdb()
        settings = Settings(redis_url=REDIS_URL, data_dir=log_dir / "data")
        chunks = len(split_into_chunks(FIVE_CHUNKS, settings.max_chunk_chars))
        engine_first = first_chunk_engine_seconds(settings)
    ms = 1000
    print(f"/run with {CLIENTS} concurrent keep-alive clients for {SUBMIT_SECONDS:g} s (one uvicorn process)")
    print(
        f"  {rate:8.0f} submits/s   latency p50 {statistics.median(latencies) * ms:.1f} ms   "
        f"p99 {sorted(latencies)[int(len(latencies) * 0.99)] * ms:.1f} ms   (target: at least 1000/s)"
    )
    print(f"streaming /v1/audio/speech, {chunks} chunks, mp3, {STREAM_RUNS} runs (p50)")
    print(f"  first audio byte {statistics.median(first_bytes) * ms:7.1f} ms")
    print(f"  whole response   {statistics.median(totals) * ms:7.1f} ms")
    print(f"  engine, chunk 1  {engine_first * ms:7.1f} ms")
    margin = (statistics.median(first_bytes) - engine_first) * ms
    print(f"  first byte - first chunk's synthesis: {margin:.1f} ms (target: at most 50 ms)")
    print(f"  first byte / whole: {statistics.median(first_bytes) / statistics.median(totals):.2f}")


if __name__ == "__main__":
    main()
