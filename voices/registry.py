"""The voice registry: voice names mapped to reference clips in the voice store.

Lookups re-read voices.json whenever its stat changes, so hand edits take effect without a restart. Writers
(the API's voice routes) hold an exclusive lock on the store around every read-modify-write.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from voices.audio import normalize_clip
from voices.errors import (
    NotBuiltinError,
    UnknownVoiceError,
    VoiceExistsError,
    VoicePathError,
    VoiceStoreError,
    VoiceUploadError,
)
from voices.paths import resolve_inside
from voices.schema import (
    BUILTIN_VOICES,
    VoiceMapping,
    VoiceRecord,
    default_mapping,
    is_builtin,
    parse_mapping,
    serialize_mapping,
)
from voices.store import RegistryVersion, VoiceStore

if TYPE_CHECKING:
    from core.settings import Settings

logger = logging.getLogger(__name__)

VOICE_NAME_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""1 to 64 letters, digits, `_`, `.` or `-`, starting with a letter or digit, without `..` (also in the OpenAPI
document, so it is ECMA-262 syntax that Python reads the same way)."""
_VOICE_NAME = re.compile(VOICE_NAME_PATTERN)


@dataclass(frozen=True)
class ResolvedVoice:
    name: str
    reference_path: Path | None
    """The clip to clone; None when the mapped file is not in the store (the engine uses its own voice)."""
    description: str | None
    language: str | None


@dataclass(frozen=True)
class VoiceEntry:
    name: str
    audio_file: str
    description: str | None
    enabled: bool
    language: str | None


@dataclass(frozen=True)
class VoiceInfo:
    name: str
    description: str | None
    enabled: bool
    has_reference_audio: bool
    language: str | None
    builtin: bool
    """One of the built-in voices (deleted or changed, `restore_builtin` puts it back)."""


class VoiceRegistry:
    def __init__(self, store_dir: Path, *, max_upload_bytes: int, max_duration_s: float) -> None:
        self._store = VoiceStore(store_dir)
        self._max_upload_bytes = max_upload_bytes
        self._max_duration_s = max_duration_s
        self._cache_lock = threading.Lock()
        self._loaded_version: RegistryVersion | None = None
        self._mapping = default_mapping()

    @classmethod
    def from_settings(cls, settings: Settings) -> VoiceRegistry:
        return cls(
            settings.resolved_voices_dir,
            max_upload_bytes=settings.max_voice_upload_bytes,
            max_duration_s=settings.max_voice_duration_s,
        )

    def resolve(self, voice: str) -> ResolvedVoice:
        """The enabled voice called `voice`; raises UnknownVoiceError listing the enabled voices otherwise."""
        mapping = self._current_mapping()
        record = mapping.get(voice)
        if record is None or not record.enabled:
            raise UnknownVoiceError(voice, _enabled_names(mapping))
        return ResolvedVoice(
            name=voice,
            reference_path=self._existing_clip(record.audio_file),
            description=record.description,
            language=record.language,
        )

    def resolve_prompt(self, audio_prompt: str) -> Path:
        """The clip named by the custom API's `audio_prompt`: an enabled voice's name or a file in the store.

        Raises VoicePathError for names that would leave the store and for files that do not exist.
        """
        record = self._current_mapping().get(audio_prompt)
        voice = record if record is not None and record.enabled else None
        file_name = voice.audio_file if voice is not None else audio_prompt
        try:
            path = resolve_inside(self._store.root, file_name)
        except VoicePathError as exc:
            raise VoicePathError(f"Invalid audio_prompt: {exc}") from exc
        if not path.is_file():
            if voice is not None:
                raise VoicePathError(f"Voice {audio_prompt!r} has no reference audio in the voice store")
            raise VoicePathError(f"audio_prompt {audio_prompt!r} does not name a file in the voice store")
        return path

    def enabled_voices(self) -> list[str]:
        """The names `resolve` accepts."""
        return _enabled_names(self._current_mapping())

    def prompt_choices(self) -> list[str]:
        """Every value `resolve_prompt` accepts: enabled voices with a clip, and the files in the store."""
        names = [name for name, record in self._current_mapping().items() if record.enabled]
        for directory, subdirectories, files in os.walk(self._store.root):
            subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
            relative = Path(directory).relative_to(self._store.root)
            names += [(relative / name).as_posix() for name in files]
        return [name for name in dict.fromkeys(names) if self._prompt_resolves(name)]

    def _prompt_resolves(self, audio_prompt: str) -> bool:
        try:
            self.resolve_prompt(audio_prompt)
        except VoicePathError:
            return False
        return True

    def list_voices(self) -> list[VoiceInfo]:
        """Every registered voice, disabled ones included, in registry order."""
        return [
            VoiceInfo(
                name=name,
                description=record.description,
                enabled=record.enabled,
                has_reference_audio=self._existing_clip(record.audio_file) is not None,
                language=record.language,
                builtin=is_builtin(name, record),
            )
            for name, record in self._current_mapping().items()
        ]

    def add_voice(
        self,
        name: str,
        audio: bytes,
        filename_hint: str | None,
        description: str | None,
        enabled: bool = True,
        language: str | None = None,
    ) -> VoiceEntry:
        """Register a new voice from an uploaded clip, stored as `<name>.wav`.

        Raises VoiceUploadError (bad name, size, format or duration), VoiceExistsError, VoiceStoreError.
        """
        _check_new_voice_name(name)
        clip = normalize_clip(
            audio,
            filename_hint=filename_hint,
            max_bytes=self._max_upload_bytes,
            max_duration_s=self._max_duration_s,
        )
        file_name = f"{name}.wav"
        with self._store.exclusive_lock():
            mapping = self._read_for_update()
            if name in mapping:
                raise VoiceExistsError(name)
            clip_owner = next((other for other, rec in mapping.items() if rec.audio_file == file_name), None)
            if clip_owner is not None:
                message = f"The clip file of voice {name!r} is already used by voice {clip_owner!r}"
                raise VoiceExistsError(name, message)
            record = VoiceRecord(audio_file=file_name, description=description, enabled=enabled, language=language)
            # The clip goes first so voices.json never names a file that is not there yet.
            self._store.write_file(file_name, clip.wav)
            self._store.write_registry(serialize_mapping({**mapping, name: record}))
        logger.info("Added voice %r (%.1f s at %d Hz)", name, clip.duration_s, clip.sample_rate)
        return _entry(name, record)

    def update_voice(
        self,
        name: str,
        *,
        description: str | None = None,
        enabled: bool | None = None,
        language: str | None = None,
    ) -> VoiceEntry:
        """Change a voice's description, enabled flag or language; None leaves a field as it is."""
        requested = {"description": description, "enabled": enabled, "language": language}
        changes = {field: value for field, value in requested.items() if value is not None}
        with self._store.exclusive_lock():
            mapping = self._read_for_update()
            record = mapping.get(name)
            if record is None:
                raise UnknownVoiceError(name, _enabled_names(mapping))
            updated = record.model_copy(update=changes)
            self._store.write_registry(serialize_mapping({**mapping, name: updated}))
        logger.info("Updated voice %r: %s", name, changes)
        return _entry(name, updated)

    def delete_voice(self, name: str) -> None:
        """Remove a voice, and its clip file unless another voice uses the same file. A built-in voice's clip
        stays, so that restoring the voice brings the same voice back."""
        with self._store.exclusive_lock():
            mapping = self._read_for_update()
            record = mapping.pop(name, None)
            if record is None:
                raise UnknownVoiceError(name, _enabled_names(mapping))
            self._store.write_registry(serialize_mapping(mapping))
            unused = all(other.audio_file != record.audio_file for other in mapping.values())
            if unused and not is_builtin(name, record):
                self._store.remove_file(record.audio_file)
        logger.info("Deleted voice %r", name)

    def restore_builtin(
        self, name: str, *, description: str | None = None, enabled: bool | None = None, language: str | None = None
    ) -> VoiceEntry:
        """Put a built-in voice back, deleted or changed: its clip, and the description, enabled flag and language
        given (None: as it ships).

        Raises NotBuiltinError, or VoiceExistsError when the name now belongs to an uploaded voice.
        """
        shipped = default_mapping().get(name)
        if shipped is None:
            raise NotBuiltinError(name, BUILTIN_VOICES)
        changes = {"description": description, "enabled": enabled, "language": language}
        builtin = shipped.model_copy(update={key: value for key, value in changes.items() if value is not None})
        with self._store.exclusive_lock():
            mapping = self._read_for_update()
            current = mapping.get(name)
            if current is not None and not is_builtin(name, current):
                message = f"{name!r} is an uploaded voice now; delete it before restoring the built-in one"
                raise VoiceExistsError(name, message)
            self._store.write_registry(serialize_mapping({**mapping, name: builtin}))
        logger.info("Restored built-in voice %r", name)
        return _entry(name, builtin)

    def _current_mapping(self) -> VoiceMapping:
        version = self._store.registry_version()
        with self._cache_lock:
            if version != self._loaded_version:
                self._reload(version)
            return self._mapping

    def _reload(self, version: RegistryVersion | None) -> None:
        """Load voices.json; a bad version is logged once and the last good mapping stays in use."""
        try:
            snapshot = self._store.read_registry()
        except OSError as exc:
            self._loaded_version = version
            logger.error("Cannot read voices.json, keeping the previous voices: %s", exc)
            return
        if snapshot is None:
            self._mapping = default_mapping()
            self._loaded_version = None
            return
        self._loaded_version = snapshot.version
        try:
            self._mapping = parse_mapping(snapshot.content)
        except ValidationError as exc:
            logger.error("voices.json is invalid, keeping the previous voices: %s", exc)
            return
        logger.info("Loaded %d voices from voices.json", len(self._mapping))

    def _read_for_update(self) -> VoiceMapping:
        """The mapping on disk, for writers; a missing file yields the defaults so they get written out."""
        snapshot = self._store.read_registry()
        if snapshot is None:
            return default_mapping()
        try:
            return parse_mapping(snapshot.content)
        except ValidationError as exc:
            # Writing over it would silently discard someone's hand edit.
            raise VoiceStoreError("voices.json is invalid; fix or remove it before changing voices") from exc

    def _existing_clip(self, audio_file: str) -> Path | None:
        try:
            path = resolve_inside(self._store.root, audio_file)
        except VoicePathError as exc:
            logger.warning("Ignoring the clip of a voice: %s", exc)
            return None
        return path if path.is_file() else None


def _check_new_voice_name(name: str) -> None:
    if _VOICE_NAME.fullmatch(name) is None:
        raise VoiceUploadError(
            f"Invalid voice name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit and without '..'",
            param="name",
        )


def _enabled_names(mapping: VoiceMapping) -> list[str]:
    return [name for name, record in mapping.items() if record.enabled]


def _entry(name: str, record: VoiceRecord) -> VoiceEntry:
    return VoiceEntry(
        name=name,
        audio_file=record.audio_file,
        description=record.description,
        enabled=record.enabled,
        language=record.language,
    )
