"""Output links and retention: local-store links signed with a secret no one can derive, malformed links that are
404s, outputs deleted after OUTPUT_RETENTION_S by the API itself, and the S3 lifecycle rule that does it there."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from core.storage import S3Store, local_path, remove_expired_outputs
from tests.conftest import Stack, redis_db_url, running_stack, settings_from_env
from tests.support.api import assert_error
from tests.support.processes import start_api, wait_for
from tests.support.s3 import BUCKET, MotoS3, free_port

RETENTION_S = 3


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Outputs kept RETENTION_S seconds, links an hour (so the retention is what ends them)."""
    retention = {"OUTPUT_RETENTION_S": str(RETENTION_S), "PRESIGN_EXPIRY_S": "3600"}
    with running_stack(tmp_path_factory.mktemp("files"), redis_db_url(10), **retention) as running:
        yield running


def make_output(stack: Stack) -> httpx.URL:
    state = httpx.post(f"{stack.base_url}/runsync", json={"input": {"text": "Kept a little while."}}, timeout=60)
    assert state.json()["status"] == "COMPLETED", state.text
    return httpx.URL(state.json()["output"]["audio_url"])


def stored_path(stack: Stack, link: httpx.URL) -> Path:
    return local_path(stack.settings.local_store_dir, link.path.removeprefix("/files/"))


@pytest.mark.integration
def test_outputs_are_deleted_after_the_retention_and_their_links_end(short_lived: Stack) -> None:
    link = make_output(short_lived)
    assert int(link.params["expires"]) <= time.time() + RETENTION_S + 1, "a link must not outlive its file"
    assert httpx.get(link).status_code == 200
    path = stored_path(short_lived, link)
    assert path.is_file()
    wait_for(lambda: not path.exists(), RETENTION_S + 15, "the API to delete the expired output")
    assert_error(httpx.get(link), 404)
    assert "deleted 1 outputs" in short_lived.api.log()


@pytest.mark.integration
def test_links_signed_with_what_the_configuration_gives_away_are_refused(short_lived: Stack) -> None:
    link = make_output(short_lived)
    key = link.path.removeprefix("/files/")
    expires = int(time.time()) + 86_400
    for guess in (
        hashlib.sha256(b"local-store:" + short_lived.env["REDIS_URL"].encode()).digest(),
        hashlib.sha256(b"local-store:redis://redis:6379/0").digest(),
        b"",
    ):
        signature = hmac.new(guess, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()
        forged = link.copy_merge_params({"expires": str(expires), "signature": signature})
        assert_error(httpx.get(forged), 404)
    assert httpx.get(link).status_code == 200


@pytest.mark.integration
def test_another_api_process_started_later_accepts_the_same_links(short_lived: Stack, tmp_path: Path) -> None:
    port = free_port()
    # A process that starts after the deployment's key exists (the stack's worker signed with it at start-up),
    # as a restarted API would; the link is made afterwards only so that the retention cannot delete it first.
    restarted = start_api(short_lived.env, tmp_path, port)
    try:
        link = make_output(short_lived)
        response = httpx.get(link.copy_with(host="127.0.0.1", port=port))
        assert response.status_code == 200 and response.content == httpx.get(link).content
    finally:
        restarted.stop()


MALFORMED: list[dict[str, Any]] = [
    {"signature": "%C3%A9"},
    {"signature": "é"},
    {"signature": "\u0000"},
    {"signature": ""},
    {"expires": "soon"},
    {"expires": "１２３４５６７８９０"},  # noqa: RUF001  (fullwidth digits, which int() would take)
    {"expires": "-1"},
    {"expires": "9" * 40},
    {"expires": None},
    {"signature": None},
    {"expires": None, "signature": None},
]


@pytest.mark.integration
@pytest.mark.parametrize("change", MALFORMED, ids=repr)
def test_every_malformed_link_is_a_404(short_lived: Stack, change: dict[str, Any]) -> None:
    link = make_output(short_lived)
    params = {**dict(link.params), **change}
    query = {name: value for name, value in params.items() if value is not None}
    assert_error(httpx.get(link.copy_with(params=query)), 404)
    for path in ("/files/", "/files/%00", "/files/..%2f..%2fetc%2fpasswd", "/files/a%C3%A9"):
        assert_error(httpx.get(f"{short_lived.base_url}{path}", params=query), 404)


def test_sweep_deletes_only_what_is_older_than_the_cutoff(tmp_path: Path) -> None:
    old, fresh, part = tmp_path / "tts" / "old.mp3", tmp_path / "tts" / "new.mp3", tmp_path / "tts" / ".x.1.part"
    old.parent.mkdir()
    for path in (old, fresh, part):
        path.write_bytes(b"audio")
    now = time.time()
    os.utime(old, (now - 100, now - 100))
    os.utime(part, (now - 100, now - 100))
    assert remove_expired_outputs(tmp_path, now - 50) == 2
    assert [path.name for path in (tmp_path / "tts").iterdir()] == ["new.mp3"]
    assert remove_expired_outputs(tmp_path / "missing", now) == 0


def s3_settings(moto_s3: MotoS3) -> Settings:
    return settings_from_env({**moto_s3.env(), "S3_KEY_PREFIX": "tts/"})


TAG = {"Key": "kind", "Value": "draft"}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("rule", "covers"),
    [
        ({"Filter": {"Prefix": "tts/"}, "Expiration": {"Days": 1}}, True),
        ({"Filter": {"Prefix": ""}, "Expiration": {"Days": 7}}, True),
        ({"Filter": {"Prefix": "other/"}, "Expiration": {"Days": 1}}, False),
        ({"Filter": {"Prefix": "tts/"}, "Expiration": {"Days": 1}, "Status": "Disabled"}, False),
        ({"Filter": {"Prefix": "tts/"}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}, False),
        ({"Filter": {"And": {"Prefix": "tts/", "Tags": [TAG]}}, "Expiration": {"Days": 1}}, False),
    ],
)
def test_s3_lifecycle_rule_for_the_outputs_is_checked(moto_s3: MotoS3, rule: dict[str, Any], covers: bool) -> None:
    moto_s3.client().delete_bucket_lifecycle(Bucket=BUCKET)  # moto's state outlives each server
    store = S3Store(s3_settings(moto_s3))
    assert "has no lifecycle rules" in (store.retention_problem() or "")
    moto_s3.client().put_bucket_lifecycle_configuration(
        Bucket=BUCKET, LifecycleConfiguration={"Rules": [{"ID": "outputs", "Status": "Enabled", **rule}]}
    )
    problem = store.retention_problem()
    assert (problem is None) is covers, problem
    if not covers:
        assert "tts/" in (problem or "") and BUCKET in (problem or "")
