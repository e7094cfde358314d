"""Voice registry and voice store: voices.json, built-in defaults, hot reload, uploads, safe paths."""

from voices.errors import (
    NotBuiltinError,
    UnknownVoiceError,
    VoiceError,
    VoiceExistsError,
    VoicePathError,
    VoiceStoreError,
    VoiceUploadError,
)
from voices.registry import ResolvedVoice, VoiceEntry, VoiceInfo, VoiceRegistry

__all__ = [
    "NotBuiltinError",
    "ResolvedVoice",
    "UnknownVoiceError",
    "VoiceEntry",
    "VoiceError",
    "VoiceExistsError",
    "VoiceInfo",
    "VoicePathError",
    "VoiceRegistry",
    "VoiceStoreError",
    "VoiceUploadError",
]
