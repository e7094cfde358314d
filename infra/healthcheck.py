"""Health probes: `python -m infra.healthcheck [URL]` exits 0 when the URL answers 200.

Without a URL it probes the API's `GET /health` on this host and sends the first API key, since `/health` sits
behind the keys; a URL given (Flower's `/healthcheck`) is probed without one. Dockerfile.api's HEALTHCHECK and
docker-compose.yml run it, and `infra.dev_stack` uses `fetch_health` to tell when the stack is ready.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx

from core.settings import Settings, get_settings


def fetch_health(url: str, settings: Settings, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """The API's `/health` body, or None when it does not answer 200 (not up yet, Redis unreachable, wrong key)."""
    headers = {}
    if settings.api_keys:
        headers["Authorization"] = f"Bearer {settings.api_keys[0].get_secret_value()}"
    response = _get(url, headers, timeout_s)
    if response is None:
        return None
    body: dict[str, Any] = response.json()
    return body


def _get(url: str, headers: dict[str, str], timeout_s: float) -> httpx.Response | None:
    try:
        response = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError:
        return None
    return response if response.status_code == httpx.codes.OK else None


def main(argv: list[str]) -> int:
    if argv:
        return 0 if _get(argv[0], {}, 5.0) is not None else 1
    settings = get_settings()
    return 0 if fetch_health(f"http://127.0.0.1:{settings.port}/health", settings) is not None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
