"""Safe resolution of file names inside the voice store."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from voices.errors import VoicePathError

REGISTRY_FILE_NAME = "voices.json"


def check_store_relative_name(name: str) -> None:
    """Reject names that could reach outside the store or at its bookkeeping files.

    Any component starting with a dot is refused: that covers `..` as well as the hidden lock and temp files.
    """
    if not name:
        raise VoicePathError("The file name is empty")
    if "\x00" in name:
        raise VoicePathError("The file name contains a NUL character")
    if "\\" in name:
        raise VoicePathError(f"{name!r} contains a backslash; use '/' between folders")
    pure = PurePosixPath(name)
    if pure.is_absolute():
        raise VoicePathError(f"{name!r} is an absolute path; name a file inside the voice store")
    if any(part.startswith(".") for part in pure.parts):
        raise VoicePathError(f"{name!r} has a component starting with '.', which is not allowed")
    if pure.parts == (REGISTRY_FILE_NAME,):
        raise VoicePathError(f"{name!r} is the registry file, not an audio clip")


def resolve_inside(store_dir: Path, name: str) -> Path:
    """The absolute path of `name` in the store, after following symlinks; it must stay inside the store.

    The file need not exist.
    """
    check_store_relative_name(name)
    root = store_dir.resolve()
    try:
        candidate = (root / name).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on Python 3.11/3.12
        raise VoicePathError(f"{name!r} cannot be resolved inside the voice store") from exc
    if not candidate.is_relative_to(root):
        raise VoicePathError(f"{name!r} points outside the voice store")
    return candidate
