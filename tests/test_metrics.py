"""`/metrics` reports real figures after real work."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Stack
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration


def _samples(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_count_requests_jobs_and_audio(stack: Stack) -> None:
    before = _samples(stack.base_url)
    speech = httpx.post(
        f"{stack.base_url}/v1/audio/speech",
        json={"model": "tts-1", "input": "Counting this one.", "voice": "alloy"},
        timeout=60,
    )
    assert speech.status_code == 200
    bad = httpx.post(f"{stack.base_url}/v1/audio/speech", json={"model": "tts-1"})
    assert bad.status_code == 400
    count = ("tts_job_latency_seconds_count", ())
    # Job figures are added by the worker just after the job's final event: metrics are eventually consistent.
    wait_for(lambda: _samples(stack.base_url).get(count, 0) > before.get(count, 0), 10, "job metrics")
    after = _samples(stack.base_url)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    route = {"method": "POST", "route": "/v1/audio/speech"}
    assert delta("tts_http_requests_total", **route, status="200") == 1
    assert delta("tts_http_requests_total", **route, status="400") == 1
    assert delta("tts_jobs_total", outcome="completed") == 1
    assert delta("tts_job_latency_seconds_count") == 1
    assert delta("tts_audio_seconds_total") > 0.5
    assert 0 < after[("tts_real_time_factor", ())] < 1
    assert after[("tts_workers", (("state", "idle"),))] + after[("tts_workers", (("state", "running"),))] >= 1
