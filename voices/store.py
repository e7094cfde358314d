"""The voice store directory: atomic writes, the writers' lock and raw access to voices.json.

The directory is shared by the API processes and the workers, possibly across containers, so every file is
replaced atomically (temp file in the same directory + os.replace) and made world-readable.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from voices.paths import REGISTRY_FILE_NAME, check_store_relative_name

_LOCK_FILE_NAME = ".voices.lock"
_TEMP_PREFIX = ".tmp-"

RegistryVersion = tuple[int, int, int]
"""(inode, mtime_ns, size) of voices.json: inode catches atomic replaces within one mtime tick."""


@dataclass(frozen=True)
class RegistrySnapshot:
    version: RegistryVersion
    content: bytes


def _version_of(stat: os.stat_result) -> RegistryVersion:
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


class VoiceStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._registry_path = root / REGISTRY_FILE_NAME

    def registry_version(self) -> RegistryVersion | None:
        """A cheap stat of voices.json; None when there is no file."""
        try:
            return _version_of(self._registry_path.stat())
        except FileNotFoundError:
            return None

    def read_registry(self) -> RegistrySnapshot | None:
        try:
            with self._registry_path.open("rb") as registry_file:
                # fstat on the open file, so the version describes exactly the content read.
                version = _version_of(os.fstat(registry_file.fileno()))
                return RegistrySnapshot(version=version, content=registry_file.read())
        except FileNotFoundError:
            return None

    def write_registry(self, content: bytes) -> None:
        self._atomic_write(self._registry_path, content)

    def write_file(self, file_name: str, content: bytes) -> None:
        check_store_relative_name(file_name)
        self._atomic_write(self.root / file_name, content)

    def remove_file(self, file_name: str) -> None:
        check_store_relative_name(file_name)
        # Unlinking a symlink removes the link only, so this cannot delete anything outside the store.
        (self.root / file_name).unlink(missing_ok=True)

    @contextmanager
    def exclusive_lock(self) -> Iterator[None]:
        """Serialise read-modify-write of the store across threads and processes.

        flock locks belong to the open file description, so each holder opens the lock file anew.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / _LOCK_FILE_NAME).open("a") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def _atomic_write(self, target: Path, content: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(dir=target.parent, prefix=_TEMP_PREFIX)
        try:
            with os.fdopen(descriptor, "wb") as temp_file:
                temp_file.write(content)
                temp_file.flush()
                os.fsync(temp_file.fileno())
            # mkstemp creates 0600; workers may run as another user.
            os.chmod(temp_name, 0o644)
            os.replace(temp_name, target)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
