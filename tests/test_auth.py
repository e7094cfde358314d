"""Who may change voices, as a rule: with ADMIN_API_KEYS set only those keys, otherwise anyone the edge let in."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from api.auth import KeyRing
from api.services.voices import VoiceService
from core.errors import APIError
from core.settings import Settings
from voices.registry import VoiceRegistry


def service(tmp_path: Path, *admin_keys: str) -> VoiceService:
    registry = VoiceRegistry(tmp_path, max_upload_bytes=1024, max_duration_s=1)
    return VoiceService(Settings(), registry, KeyRing(SecretStr(key) for key in admin_keys))


@pytest.mark.parametrize("authorization", [None, b"", b"Bearer anything", b"whatever"])
def test_without_admin_keys_any_caller_the_edge_admitted_may_write(tmp_path: Path, authorization: bytes | None) -> None:
    service(tmp_path).check_writer(authorization)


@pytest.mark.parametrize("authorization", [b"Bearer boss", b"bearer boss", b"boss", b"Bearer  boss "])
def test_admin_keys_may_write(tmp_path: Path, authorization: bytes) -> None:
    service(tmp_path, "boss", "chief").check_writer(authorization)


@pytest.mark.parametrize(
    ("authorization", "status"), [(None, 401), (b"", 401), (b"Bearer bo", 403), (b"Bearer bossy", 403), (b"k1", 403)]
)
def test_other_callers_may_not(tmp_path: Path, authorization: bytes | None, status: int) -> None:
    with pytest.raises(APIError) as raised:
        service(tmp_path, "boss").check_writer(authorization)
    assert raised.value.status_code == status
