"""Every error leaves the API in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

Domain code raises APIError (or lets a known exception through); the handlers here are the only place that turns
exceptions into responses, so no route leaks `str(exc)` from an unexpected failure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class APIError(Exception):
    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})


def error_body(status_code: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status_code, "invalid_request_error" if status_code < 500 else "server_error"),
            "param": param,
            "code": code,
        }
    }


def broker_unavailable() -> APIError:
    return APIError(
        503,
        "The job queue is unavailable. Retry later.",
        code="queue_unavailable",
        headers={"Retry-After": "5"},
    )


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(
        error_body(error.status_code, error.message, error.param, error.code),
        status_code=error.status_code,
        headers=error.headers,
    )


def invalid_request(errors: Sequence[Mapping[str, Any]], *, prefix: str = "") -> APIError:
    """The 400 for a request that failed validation, naming the top-level field (after `prefix`) in `param`."""
    first = errors[0]
    kind = first.get("type")
    if kind == "json_invalid":
        # Its location holds the character offset of the syntax error, not a parameter.
        return APIError(400, "The request body is not valid JSON.")
    location = _field_path(first)
    if not location:
        return APIError(400, "The request body is not valid JSON for this endpoint.")
    param = f"{prefix}{location[0]}"
    if kind == "extra_forbidden":
        return APIError(400, f"Unrecognized request argument supplied: {prefix}{'.'.join(location)}", param=param)
    same_field = [error for error in errors if _field_path(error)[:1] == location[:1]]
    if len(same_field) > 1:
        # A union (a voice name or {"id": ...}): each accepted form reports why it did not match.
        detail = "; or ".join(dict.fromkeys(str(error.get("msg")) for error in same_field))
        return APIError(400, f"Invalid value for '{param}': {detail}", param=param, code="invalid_value")
    dotted = prefix + ".".join(location)
    return APIError(400, f"Invalid value for '{dotted}': {first.get('msg')}", param=param, code="invalid_value")


def _field_path(error: Mapping[str, Any]) -> list[str]:
    return [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(invalid_request(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return error_response(APIError(exc.status_code, message, headers=exc.headers))

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _broker_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("Redis unreachable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(broker_unavailable())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(APIError(500, "Internal server error."))
