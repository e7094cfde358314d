"""The edge of every request, as plain ASGI (no BaseHTTPMiddleware: it buffers and breaks streaming):
a request id on every response, the body size limit (413) and API-key auth (401)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import KeyRing
from api.errors import error_body

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = b"x-request-id"
OPEN_PATH_PREFIXES = ("/docs", "/openapi.json", "/files/", "/metrics", "/playground")
"""Paths served without a key: the playground page itself is open, and its API calls carry the key the user enters."""


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyRing,
        max_body_bytes: int,
        upload_paths: Sequence[str],
        max_upload_bytes: int,
        count_request: Callable[[str, str, int], None],
    ) -> None:
        self._app = app
        self._keys = keys
        self._max_body = max_body_bytes
        self._upload_paths = tuple(upload_paths)
        self._max_upload = max_upload_bytes
        self._count_request = count_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex.encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode(errors="replace")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id)]
                route = scope.get("route")
                self._count_request(scope["method"], getattr(route, "path", "unmatched"), message["status"])
            await send(message)

        open_path = scope["path"].startswith(OPEN_PATH_PREFIXES)
        if self._keys and not open_path and not self._keys.admits(headers.get(b"authorization")):
            await _send_error(send_with_id, 401, "Invalid or missing API key.", {"www-authenticate": "Bearer"})
            return
        limit = self._max_upload if scope["path"] in self._upload_paths else self._max_body
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_error(send_with_id, 413, f"The request body is over the {limit} byte limit.")
            return
        if declared is None and scope["method"] in ("POST", "PUT", "PATCH"):
            # A chunked body of unknown length: read it here, within the limit, and replay it to the app.
            body = await _read_body(receive, limit)
            if body is None:
                await _send_error(send_with_id, 413, f"The request body is over the {limit} byte limit.")
                return
            receive = _replay(body, receive)
        await self._app(scope, receive, send_with_id)


async def _send_error(send: Send, status: int, message: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps(error_body(status, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive_more: Receive) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive_more()  # blocks until the client disconnects

    return receive
