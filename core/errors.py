"""The error a request gets for what it asked: its HTTP status, message, parameter and code.

Plain Python, so the validation shared by the API and the Runpod worker (tasks/validation.py) can raise it where
no web framework is installed. The API turns it into `{"error": {...}}` (api/errors.py); the Runpod worker reports
its message as the job's error.
"""

from __future__ import annotations

from collections.abc import Mapping


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
