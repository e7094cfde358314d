"""Voices over the API: list, upload, change, delete and restore, with who may write.

The registry decodes uploads and takes a file lock around every write, which may wait on another process: all of it
runs in a worker thread, never on the event loop that carries every audio stream in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio

from api.auth import KeyRing
from api.schemas.openai import Voice, VoiceList, VoiceUpdate
from core.errors import APIError
from core.settings import Settings
from tasks.validation import check_language
from voices.errors import NotBuiltinError, UnknownVoiceError, VoiceError, VoiceExistsError, VoiceUploadError
from voices.registry import VoiceRegistry

T = TypeVar("T")


class VoiceService:
    def __init__(self, settings: Settings, registry: VoiceRegistry, admin_keys: KeyRing) -> None:
        self._settings = settings
        self._registry = registry
        self._admin_keys = admin_keys

    def check_writer(self, authorization: bytes | None) -> None:
        """With ADMIN_API_KEYS set, only those keys may change voices."""
        if not self._admin_keys or self._admin_keys.admits(authorization):
            return
        if not authorization:
            raise APIError(401, "Changing voices needs an admin API key.", headers={"WWW-Authenticate": "Bearer"})
        raise APIError(403, "This API key may not change voices; that needs an admin key.", code="admin_key_required")

    async def list_all(self) -> VoiceList:
        return VoiceList(data=await self._in_thread(self._voices))

    async def add(
        self, name: str, audio: bytes, filename: str | None, description: str | None, language: str | None
    ) -> Voice:
        # A voice in a language the engine does not speak would fail every job that used it.
        check_language(language, self._settings, param="language")
        await self._in_thread(lambda: self._registry.add_voice(name, audio, filename, description, language=language))
        return await self.get(name)

    async def update(self, name: str, change: VoiceUpdate) -> Voice:
        return await self._write_fields(self._registry.update_voice, name, change)

    async def delete(self, name: str) -> None:
        await self._in_thread(lambda: self._registry.delete_voice(name))

    async def restore(self, name: str, change: VoiceUpdate) -> Voice:
        return await self._write_fields(self._registry.restore_builtin, name, change)

    async def _write_fields(self, write: Callable[..., object], name: str, change: VoiceUpdate) -> Voice:
        check_language(change.language, self._settings, param="language")
        fields = {"description": change.description, "enabled": change.enabled, "language": change.language}
        await self._in_thread(lambda: write(name, **fields))
        return await self.get(name)

    async def get(self, name: str) -> Voice:
        for voice in await self._in_thread(self._voices):
            if voice.name == name:
                return voice
        raise APIError(404, f"Voice '{name}' not found.", param="name", code="voice_not_found")

    def choices(self) -> tuple[list[str], list[str]]:
        """What `voice` and `audio_prompt` accept right now, for the OpenAPI document."""
        return self._registry.enabled_voices(), self._registry.prompt_choices()

    def _voices(self) -> list[Voice]:
        return [Voice(**vars(info)) for info in self._registry.list_voices()]

    async def _in_thread(self, call: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(call)
        except VoiceExistsError as exc:
            raise APIError(409, str(exc), param="name", code="voice_exists") from exc
        except VoiceUploadError as exc:
            raise APIError(400, str(exc), param=exc.param, code="invalid_voice") from exc
        except (UnknownVoiceError, NotBuiltinError) as exc:
            raise APIError(404, str(exc), param="name", code="voice_not_found") from exc
        except VoiceError as exc:
            raise APIError(400, str(exc), param="name") from exc
