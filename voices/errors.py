"""Errors of the voice registry. Messages are meant for API clients: they never contain server paths."""

from __future__ import annotations

from collections.abc import Sequence


class VoiceError(Exception):
    """Base class of every voice registry error."""


class UnknownVoiceError(VoiceError):
    """The voice is not in the registry, or it is disabled."""

    def __init__(self, voice: str, available: Sequence[str]) -> None:
        self.voice = voice
        self.available = list(available)
        listed = ", ".join(self.available) or "none"
        super().__init__(f"Voice {voice!r} is not available. Available voices: {listed}")


class VoicePathError(VoiceError, ValueError):
    """An `audio_prompt` that is unsafe, malformed or names no file in the voice store."""


class VoiceUploadError(VoiceError, ValueError):
    """A rejected upload; `param` is the request field at fault (`name` or `file`)."""

    def __init__(self, message: str, *, param: str = "file") -> None:
        self.param = param
        super().__init__(message)


class VoiceExistsError(VoiceError):
    """An upload under a name that is already registered, or whose clip file another voice uses."""

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        super().__init__(message or f"Voice {name!r} already exists; delete it first to replace it")


class VoiceStoreError(VoiceError):
    """voices.json is unreadable or invalid, so it cannot be changed safely until someone fixes it."""


class NotBuiltinError(VoiceError):
    """A restore of a name that is not one of the built-in voices."""

    def __init__(self, name: str, builtins: Sequence[str]) -> None:
        self.name = name
        super().__init__(f"{name!r} is not a built-in voice; the built-in voices are {', '.join(builtins)}")
