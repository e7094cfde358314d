"""Job metrics shared through Redis, so every worker process adds to them and any API process can expose them."""

from __future__ import annotations

import math

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, math.inf)
AUDIO_SECONDS_KEY = "stats:audio_seconds"
ENGINE_SECONDS_KEY = "stats:engine_seconds"
LATENCY_SUM_KEY = "stats:latency_seconds_sum"


def latency_bucket_key(upper_bound: float) -> str:
    return f"stats:latency_seconds_bucket:{'+Inf' if math.isinf(upper_bound) else upper_bound}"
