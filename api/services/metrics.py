"""Prometheus metrics: this process's HTTP requests, plus queue and job figures every worker adds up in Redis."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tasks.client import JobClient
from tasks.jobs import stat_key
from tasks.metrics import (
    AUDIO_SECONDS_KEY,
    ENGINE_SECONDS_KEY,
    LATENCY_BUCKETS_S,
    LATENCY_SUM_KEY,
    latency_bucket_key,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot(Collector):
    """Serves figures read just before the scrape (collectors are synchronous; Redis is read asynchronously)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


class Metrics:
    def __init__(self) -> None:
        self._registry = CollectorRegistry()
        self.requests = Counter(
            "tts_http_requests",
            "HTTP requests answered by this API process.",
            ["method", "route", "status"],
            registry=self._registry,
        )

    def count_request(self, method: str, route: str, status: int) -> None:
        self.requests.labels(method, route, str(status)).inc()

    async def render(self, jobs: JobClient, client: aioredis.Redis) -> bytes:
        registry = CollectorRegistry()
        registry.register(_Snapshot(await _job_metrics(jobs, client)))
        return generate_latest(self._registry) + generate_latest(registry)


async def _job_metrics(jobs: JobClient, client: aioredis.Redis) -> list[Metric]:
    counts = await jobs.counts()
    workers = await jobs.worker_counts()
    keys = [AUDIO_SECONDS_KEY, ENGINE_SECONDS_KEY, LATENCY_SUM_KEY, stat_key("cancelled")]
    bucket_keys = [latency_bucket_key(bound) for bound in LATENCY_BUCKETS_S]
    values: list[Any] = await client.mget([*keys, *bucket_keys])
    audio_s, engine_s, latency_sum, cancelled = (float(v or 0) for v in values[: len(keys)])
    buckets = [(_le(bound), float(v or 0)) for bound, v in zip(LATENCY_BUCKETS_S, values[len(keys) :], strict=True)]

    queue = GaugeMetricFamily("tts_queue_depth", "Jobs waiting in the queue.", value=counts["inQueue"])
    running = GaugeMetricFamily("tts_jobs_in_progress", "Jobs being synthesized.", value=counts["inProgress"])
    ended = CounterMetricFamily("tts_jobs", "Jobs that ended, by outcome.", labels=["outcome"])
    ended.add_metric(["completed"], counts["completed"])
    ended.add_metric(["failed"], counts["failed"])
    ended.add_metric(["cancelled"], cancelled)
    retries = CounterMetricFamily("tts_job_retries", "Job attempts after the first.", value=counts["retried"])
    worker_gauge = GaugeMetricFamily("tts_workers", "Synthesis worker processes alive.", labels=["state"])
    worker_gauge.add_metric(["idle"], workers["idle"])
    worker_gauge.add_metric(["running"], workers["running"])
    latency = HistogramMetricFamily(
        "tts_job_latency_seconds",
        "Time from submit to completion of completed jobs.",
        buckets=buckets,
        sum_value=latency_sum,
    )
    audio = CounterMetricFamily("tts_audio_seconds", "Seconds of audio produced.", value=audio_s)
    engine = CounterMetricFamily("tts_engine_seconds", "Seconds spent inside the engine.", value=engine_s)
    rtf = GaugeMetricFamily(
        "tts_real_time_factor",
        "Engine seconds per second of audio produced (below 1 is faster than real time).",
        value=engine_s / audio_s if audio_s else 0.0,
    )
    return [queue, running, ended, retries, worker_gauge, latency, audio, engine, rtf]


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)
