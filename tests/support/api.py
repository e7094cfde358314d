"""Assertions shared by the API tests."""

from __future__ import annotations

from typing import Any

import httpx

UNCHECKED: Any = object()


def assert_error(
    response: httpx.Response, status: int, param: str | None = UNCHECKED, *, code: str | None = UNCHECKED
) -> dict[str, Any]:
    """The response is an OpenAI-shaped error with this status (and `param`/`code` when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers.get("x-request-id")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    if param is not UNCHECKED:
        assert error["param"] == param
    if code is not UNCHECKED:
        assert error["code"] == code
    return error
