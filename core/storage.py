"""Where finished audio goes: an S3-compatible bucket or a local directory served by the API.

Keys are deterministic per job, so a retried task overwrites its earlier upload instead of adding another.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlencode

from core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

LOCAL_FILES_ROUTE = "/files"
_EXPIRES = re.compile(r"[0-9]{1,12}")


class StorageError(Exception):
    """The object store could not take or serve the result; the message is safe to show to callers."""


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def url(self, key: str) -> str:
        """A URL a client can GET without credentials, valid for the configured expiry."""
        ...


def output_key(settings: Settings, job_id: str, extension: str) -> str:
    return f"{settings.s3_key_prefix}{job_id}.{extension}"


class S3Store:
    """Any S3-compatible endpoint (AWS, MinIO, R2). boto3's standard retry mode retries throttling, 5xx and
    connection errors with exponential backoff and jitter; what still fails becomes a StorageError."""

    def __init__(self, settings: Settings) -> None:
        if not settings.s3_bucket_name:
            raise StorageError("S3_BUCKET_NAME must be set when STORAGE_BACKEND=s3")
        self._bucket = settings.s3_bucket_name
        self._prefix = settings.s3_key_prefix
        self._expiry_s = settings.presign_expiry_s
        self._client = _s3_client(settings, settings.s3_endpoint_url, settings.delivery_max_retries)
        # SigV4 signs the Host header, so URLs for the outside world must be presigned against the public origin.
        public = settings.s3_public_endpoint_url
        self._presigner = _s3_client(settings, public, 0) if public else self._client

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.put_object(
                Bucket=self._bucket, Key=key, Body=data, ContentType=content_type, ContentLength=len(data)
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"Could not upload the result to object storage: {exc}") from exc

    def retention_problem(self) -> str | None:
        """What is wrong with the bucket's lifecycle for our outputs, or None when an enabled rule expires every
        object under the key prefix. S3 deletes them then; this service never does."""
        from botocore.exceptions import BotoCoreError, ClientError

        advice = f"add a lifecycle rule expiring objects under {self._prefix!r} (README: Delivery)"
        try:
            rules = self._client.get_bucket_lifecycle_configuration(Bucket=self._bucket)["Rules"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchLifecycleConfiguration":
                return f"S3 bucket {self._bucket!r} has no lifecycle rules, so outputs are never deleted: {advice}"
            return f"could not read the lifecycle rules of S3 bucket {self._bucket!r} ({code or exc}); {advice}"
        except BotoCoreError as exc:
            return f"could not read the lifecycle rules of S3 bucket {self._bucket!r} ({exc}); {advice}"
        if any(_expires_prefix(rule, self._prefix) for rule in rules):
            return None
        return f"no enabled lifecycle rule of S3 bucket {self._bucket!r} expires every output: {advice}"

    def url(self, key: str) -> str:
        url: str = self._presigner.generate_presigned_url(
            "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=self._expiry_s
        )
        return url


def _expires_prefix(rule: Any, prefix: str) -> bool:
    """Whether a lifecycle rule expires every object whose key starts with `prefix`: enabled, with an expiration,
    and filtered by a prefix of it alone (a tag or size condition would leave other outputs behind)."""
    if rule.get("Status") != "Enabled" or not rule.get("Expiration"):
        return False
    condition = rule.get("Filter", {"Prefix": rule.get("Prefix", "")})
    if set(condition) - {"Prefix"}:
        return False
    return prefix.startswith(condition.get("Prefix", ""))


def _s3_client(settings: Settings, endpoint_url: str | None, retries: int) -> S3Client:
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=settings.s3_region,
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "total_max_attempts": retries + 1},
        connect_timeout=3,
        read_timeout=30,
        # boto3 >= 1.36 sends checksums by default, which many S3-compatible stores reject (boto3#4392).
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    secret = settings.s3_secret_access_key
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=config,
    )


class LocalStore:
    """A directory on disk; the API serves it under /files with an HMAC-signed, expiring query string, and deletes
    what is older than the retention (`remove_expired_outputs`)."""

    def __init__(self, settings: Settings, signing_key: bytes) -> None:
        self._root = settings.local_store_dir
        self._base_url = settings.resolved_public_base_url
        # A link never outlives the file it points at.
        self._expiry_s = min(settings.presign_expiry_s, settings.resolved_output_retention_s)
        self._key = signing_key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path_for(key)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(data)
            os.replace(partial, path)
        except OSError as exc:
            raise StorageError(f"Could not write the result to local storage: {exc.strerror}") from exc

    def url(self, key: str) -> str:
        expires = int(time.time()) + self._expiry_s
        query = urlencode({"expires": expires, "signature": sign_local_url(self._key, key, expires)})
        return f"{self._base_url}{LOCAL_FILES_ROUTE}/{quote(key)}?{query}"

    def path_for(self, key: str) -> Path:
        return local_path(self._root, key)


def local_path(root: Path, key: str) -> Path:
    """Where `key` lives under `root`; StorageError for keys that would leave it."""
    try:
        path = (root / key).resolve()
    except (OSError, ValueError) as exc:  # ValueError: an embedded NUL
        raise StorageError("invalid object key") from exc
    if not path.is_relative_to(root.resolve()):
        raise StorageError("invalid object key")
    return path


def sign_local_url(key: bytes, object_key: str, expires: int) -> str:
    return hmac.new(key, f"{object_key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def verify_local_url(key: bytes, object_key: str, expires: str, signature: str) -> bool:
    """Whether a link's query is genuine and live. Anything malformed is simply not genuine."""
    if _EXPIRES.fullmatch(expires) is None or int(expires) < time.time() or not signature.isascii():
        return False
    return hmac.compare_digest(sign_local_url(key, object_key, int(expires)), signature)


def remove_expired_outputs(root: Path, older_than: float) -> int:
    """Delete the files under `root` last written before `older_than` (a timestamp), leftovers of interrupted
    writes included; returns how many went. Files that vanish meanwhile (another API process) are skipped."""
    removed = 0
    for directory, _subdirectories, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            try:
                if path.lstat().st_mtime < older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
    return removed


def create_object_store(settings: Settings, signing_key: Callable[[], bytes]) -> ObjectStore | None:
    """The configured store, or None when results travel inline (base64) instead. `signing_key` gives the local
    store's link key (only asked for when that store is configured)."""
    if settings.storage_backend == "s3":
        store = S3Store(settings)
        problem = store.retention_problem()
        if problem:
            log.warning("%s", problem)
        return store
    if settings.storage_backend == "local":
        return LocalStore(settings, signing_key())
    return None
