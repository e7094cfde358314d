"""Every error leaves the API in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.

Domain code raises APIError (or lets a known exception through); the handlers here are the only place that turns
exceptions into responses, so no route leaks `str(exc)` from an unexpected failure.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from core.errors import APIError
from tasks.validation import invalid_request

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


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """What every error response carries, as OpenAI's API does."""

    error: ErrorDetail


ERROR_DESCRIPTIONS = {
    400: "Invalid request: `param` names the field at fault.",
    401: "Missing or unknown API key.",
    403: "The key may not do this.",
    404: "No such resource (unknown or expired).",
    409: "Conflicts with the current state.",
    413: "Body over the size limit.",
    429: "Queue full; retry after `Retry-After` seconds.",
    500: "Synthesis failed.",
    503: "The job queue (Redis) is unreachable; retry after `Retry-After` seconds.",
    504: "Not ready in time; the job was cancelled.",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the errors a route returns, in the one error shape."""
    return {
        status: {
            "model": ErrorBody,
            "description": ERROR_DESCRIPTIONS[status],
            **({"headers": RETRY_AFTER} if status in (429, 503) else {}),
        }
        for status in statuses
    }


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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(invalid_request(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route that matched the path only; there may be more.
            headers["Allow"] = ", ".join(allowed_methods(request))
        return error_response(APIError(exc.status_code, message, headers=headers))

    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _broker_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("Redis unreachable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(broker_unavailable())

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(APIError(500, "Internal server error."))


HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method that some route serves at this request's path, found by asking the routes themselves."""
    routes = request.app.routes
    return [
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]
