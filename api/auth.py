"""API keys: the keys a request may present, and the admin keys that voice changes need."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from pydantic import SecretStr


class KeyRing:
    """A set of keys, matched in constant time against `Authorization: Bearer <key>` or the bare key."""

    def __init__(self, keys: Iterable[SecretStr]) -> None:
        self._keys = [key.get_secret_value().encode() for key in keys]

    def __bool__(self) -> bool:
        return bool(self._keys)

    def admits(self, authorization: bytes | None) -> bool:
        supplied = authorization or b""
        if supplied[:7].lower() == b"bearer ":
            supplied = supplied[7:]
        supplied = supplied.strip()
        # Compare against every key, so the time taken does not tell which one nearly matched.
        matches = [hmac.compare_digest(supplied, key) for key in self._keys]
        return any(matches)
