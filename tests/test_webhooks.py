"""Webhooks end to end: a real API, a real worker on both queues, a real HTTP receiver on loopback."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import Stack, redis_db_url, start_stack, stop_stack
from tests.support.processes import wait_for
from tests.support.receiver import Receiver, webhook_receiver
from tests.support.s3 import free_port
from workers.ssrf import AllowList, TargetRefused, check_target

pytestmark = pytest.mark.integration

OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()
MAX_ATTEMPTS = 3


def _stack(tmp_dir: Any, redis_db: int, **overrides: str) -> Stack:
    return start_stack(
        tmp_dir,
        redis_db_url(redis_db),
        worker_queues="tts,service",
        WEBHOOK_SECRET=f"{OLD_SECRET},{NEW_SECRET}",
        WEBHOOK_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        WEBHOOK_BACKOFF_S="0.2",
        WEBHOOK_BACKOFF_MAX_S="0.5",
        WEBHOOK_TIMEOUT_S="2",
        **overrides,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = _stack(tmp_path_factory.mktemp("webhooks"), 13, WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
    yield running
    stop_stack(running)


def run_job(stack: Stack, webhook: str, **extra: Any) -> str:
    body = {"input": {"text": "Hello webhook. This is a second sentence."}, "webhook": webhook, **extra}
    response = httpx.post(f"{stack.base_url}/run", json=body)
    assert response.status_code == 200, response.text
    job_id: str = response.json()["id"]
    return job_id


def status(stack: Stack, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.base_url}/status/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_webhook_state(stack: Stack, job_id: str, *states: str) -> dict[str, Any]:
    wait_for(lambda: status(stack, job_id).get("webhook", {}).get("state") in states, 30, f"webhook {states}")
    return status(stack, job_id)


def test_completed_job_is_delivered_signed_with_every_secret(stack: Stack) -> None:
    with webhook_receiver() as receiver:
        job_id = run_job(stack, receiver.url)
        final = wait_webhook_state(stack, job_id, "delivered")
    [delivery] = receiver.received
    for secret in (OLD_SECRET, NEW_SECRET):
        payload = Webhook(secret).verify(delivery.body, delivery.headers)
        assert payload["id"] == job_id and payload["status"] == "COMPLETED"
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    received = json.loads(delivery.body)
    assert received["output"] == final["output"] and "webhook" not in received
    assert final["webhook"]["attempts"][0]["status_code"] == 200


def test_server_errors_are_retried_with_the_same_id(stack: Stack) -> None:
    with webhook_receiver([(500, {}), (503, {"Retry-After": "0"})]) as receiver:
        job_id = run_job(stack, receiver.url)
        final = wait_webhook_state(stack, job_id, "delivered")
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1
    assert [a["status_code"] for a in final["webhook"]["attempts"]] == [500, 503, 200]


def test_receiver_down_for_the_whole_window_loses_nothing(stack: Stack) -> None:
    closed = f"http://127.0.0.1:{free_port()}/hook"
    job_id = run_job(stack, closed)
    final = wait_webhook_state(stack, job_id, "failed")
    assert final["status"] == "COMPLETED" and final["output"]["status"] == "success"
    attempts = final["webhook"]["attempts"]
    assert len(attempts) == MAX_ATTEMPTS
    assert all(a.get("status_code") is None and a["error"].startswith("connection failed") for a in attempts)


def test_gone_disables_the_url_for_the_job(stack: Stack) -> None:
    with webhook_receiver([(410, {})]) as receiver:
        job_id = run_job(stack, receiver.url, webhook_events=["started", "completed"])
        final = wait_webhook_state(stack, job_id, "disabled")
        wait_for(lambda: status(stack, job_id)["status"] == "COMPLETED", 30, "job done")
        wait_for(lambda: "webhook disabled by an earlier 410" in stack.worker.log(), 10, "completed skipped")
    assert len(receiver.received) == 1
    assert json.loads(receiver.received[0].body)["status"] == "IN_PROGRESS"
    assert [a["status_code"] for a in final["webhook"]["attempts"]] == [410]


def test_redirect_is_not_followed(stack: Stack) -> None:
    with webhook_receiver() as elsewhere, webhook_receiver([(302, {"Location": elsewhere.url})]) as receiver:
        job_id = run_job(stack, receiver.url)
        final = wait_webhook_state(stack, job_id, "failed")
    assert len(receiver.received) == 1 and elsewhere.received == []
    assert [a["status_code"] for a in final["webhook"]["attempts"]] == [302]


def test_started_progress_and_completed_events_arrive_in_order(stack: Stack) -> None:
    with webhook_receiver() as receiver:
        job_id = run_job(stack, receiver.url, webhook_events=["started", "progress", "completed"])
        wait_for(lambda: _statuses(receiver)[-1:] == ["COMPLETED"], 30, "completed event")
    statuses = _statuses(receiver)
    assert statuses[0] == "IN_PROGRESS" and statuses[-1] == "COMPLETED"
    assert len(statuses) >= 3  # started, at least one progress, completed
    assert len({r.headers["webhook-id"] for r in receiver.received}) == len(statuses)
    assert status(stack, job_id)["webhook"]["events"] == ["completed", "progress", "started"]


def _statuses(receiver: Receiver) -> list[str]:
    return [json.loads(r.body)["status"] for r in receiver.received]


def test_loopback_webhook_refused_without_allowlist(tmp_path: Any) -> None:
    refusing = _stack(tmp_path, 14)
    try:
        with webhook_receiver() as receiver:
            job_id = run_job(refusing, receiver.url)
            final = wait_webhook_state(refusing, job_id, "failed")
        assert receiver.received == []
        [attempt] = final["webhook"]["attempts"]
        assert attempt["error"].startswith("refused:") and "WEBHOOK_ALLOWED_HOSTS" in attempt["error"]
    finally:
        stop_stack(refusing)


def test_bad_webhook_events_are_rejected_at_submit(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.base_url}/run",
        json={"input": {"text": "hi"}, "webhook": "http://127.0.0.1/x", "webhook_events": ["finished"]},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "webhook_events"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://100.64.0.1/",
        "http://[fd00::1]/",
        "http://localhost:8080/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a00:1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
def test_private_targets_are_refused_before_any_connection(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_connections(*_: object, **__: object) -> None:
        raise AssertionError("the guard must refuse before connecting")

    monkeypatch.setattr(socket.socket, "connect", no_connections)
    with pytest.raises(TargetRefused):
        check_target(url, AllowList.parse([]))


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost", "gopher://1.1.1.1/"])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_target(url, AllowList.parse([]))


def test_allow_list_by_host_and_by_cidr() -> None:
    assert check_target("http://127.0.0.1:9/x", AllowList.parse(["127.0.0.0/8"])).address == "127.0.0.1"
    assert check_target("http://localhost:9/x", AllowList.parse(["localhost"])).host == "localhost"
    assert check_target("https://8.8.8.8/x", AllowList.parse([])).port == 443
    with pytest.raises(TargetRefused):
        check_target("http://10.1.2.3/", AllowList.parse(["127.0.0.0/8", "example.com"]))
