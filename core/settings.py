"""The one settings object. Every value comes from the environment (or `.env`); README.md lists them all."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

EngineName = Literal["espeak", "chatterbox"]
ChatterboxVariant = Literal["turbo", "standard", "multilingual"]
StorageBackend = Literal["none", "local", "s3"]

SecretList = Annotated[list[SecretStr], NoDecode]
CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # --- service ---
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_connect_timeout_s: float = Field(default=5.0, gt=0)
    redis_socket_timeout_s: float = Field(default=10.0, ge=1)
    """Longest wait for any one Redis reply; blocking reads wait in slices of half this (core/redis_clients.py)."""
    data_dir: Path = Path("data")
    flower_port: int = 5555

    # --- engine ---
    tts_engine: EngineName = "espeak"
    chatterbox_variant: ChatterboxVariant = "turbo"
    chatterbox_checkpoint_dir: Path | None = None
    chatterbox_device: Literal["auto", "cuda", "mps", "cpu"] = "auto"
    chatterbox_watermark: bool = True
    chatterbox_language: str = "en"
    conditionals_cache_size: int = Field(default=32, ge=1)
    engine_max_batch: int = Field(default=16, ge=1)
    """Chunks ChatterBox Turbo decodes together on one GPU."""
    engine_kv_cache_mb: int = Field(default=8192, ge=64)
    """Memory for T3's key/value cache; it bounds the batch when smaller than engine_max_batch rows need."""
    engine_max_speech_tokens: int = Field(default=1000, ge=1)
    """Longest chunk in speech tokens (25 a second); 1000 is the library's own limit."""
    stream_tokens: int = Field(default=25, ge=5)
    """Speech tokens in the first streamed piece of a chunk (25: a second of speech); later pieces double."""
    engine_vocoder_batch: int | None = Field(default=None, ge=1)
    """Rows S3Gen voices in one call; unset: all that are ready on a GPU, one at a time on a CPU, where S3Gen is
    compute-bound and a batch costs more per row (README, continuous batching)."""
    engine_max_restarts: int = Field(default=3, ge=0)
    """Engine process deaths within ten minutes that are restarted; one more stops the worker."""
    engine_threads: int | None = Field(default=None, ge=1)
    """torch threads in the engine process; unset: torch's default (one per core)."""
    espeak_voice: str = "en-us"
    espeak_words_per_minute: int = Field(default=175, ge=80, le=450)

    # --- text and audio ---
    max_input_chars: int = Field(default=4096, ge=1)
    max_chunk_chars: int = Field(default=300, ge=20)
    text_normalization: bool = True
    """Spell out numbers, symbols and abbreviations in English text; false turns it off for every request."""
    output_sample_rate: int = 24000
    join_pause_ms: float = Field(default=80.0, ge=0)
    join_crossfade_ms: float = Field(default=10.0, ge=0)
    loudness_target_dbfs: float | None = None

    # --- voices ---
    voices_dir: Path | None = None
    max_voice_upload_bytes: int = 10 * 1024 * 1024
    max_voice_duration_s: float = 60.0

    # --- queue ---
    tts_queue: str = "tts"
    service_queue: str = "service"
    task_soft_time_limit_s: int = 540
    task_time_limit_s: int = 600
    max_attempts: int = Field(default=3, ge=1)
    worker_concurrency: int = Field(default=1, ge=1)
    model_load_timeout_s: float = 600.0
    job_ttl_s: int = 30 * 60
    sync_job_ttl_s: int = 60
    audio_stream_maxlen: int = 4096
    audio_stream_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    """Unread audio one job may hold on its event stream; past it the worker waits for its caller to read."""
    audio_stream_stall_s: float = Field(default=10.0, gt=0)
    """How long the worker waits for a caller that reads none of that audio before it stops the job."""

    # --- delivery ---
    storage_backend: StorageBackend = "local"
    public_base_url: str | None = None
    """Origin of local-store links; unset: this API's own HOST and PORT."""
    url_signing_key: SecretStr | None = None
    s3_endpoint_url: str | None = None
    s3_public_endpoint_url: str | None = None
    s3_bucket_name: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_key_prefix: str = "tts/"
    presign_expiry_s: int = 3600
    output_retention_s: int | None = Field(default=None, ge=1)
    """How long the local store keeps an output; unset: the link lifetime (`presign_expiry_s`)."""
    delivery_max_retries: int = 4

    # --- webhooks ---
    webhook_secret: SecretList = Field(default_factory=list)
    """`whsec_...` secrets; with several (rotation) every signature is sent."""
    webhook_allowed_hosts: CommaList = Field(default_factory=list)
    """Hosts or CIDRs that webhooks may reach although they are private, loopback or link-local."""
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_backoff_s: float = Field(default=2.0, ge=0)
    webhook_backoff_max_s: float = Field(default=60.0, ge=0)
    webhook_timeout_s: float = Field(default=15.0, gt=0)
    webhook_max_response_bytes: int = 64 * 1024
    webhook_progress_interval_s: float = 0.5

    # --- Runpod serverless worker (workers/runpod_handler.py) ---
    runpod_concurrency: int | None = Field(default=None, ge=1)
    """Jobs one Runpod worker runs at once; unset: as many as its engine decodes together (its batch)."""

    # --- API ---
    api_keys: SecretList = Field(default_factory=list)
    admin_api_keys: SecretList = Field(default_factory=list)
    """Keys that may change voices (upload, patch, delete, restore); unset: any accepted key may."""
    max_queue_depth: int = 1000
    max_body_bytes: int = 1024 * 1024
    sync_wait_timeout_s: float = 300.0
    runsync_default_wait_ms: int = 90_000
    fail_fast_without_worker: bool = False
    """Refuse a waiting caller (speech, `/runsync`) with 503 at once when no worker is alive; false: its job waits
    in the queue for a worker to start (scaling from zero), up to the caller's own timeout."""

    @field_validator("api_keys", "admin_api_keys", "webhook_secret", "webhook_allowed_hosts", mode="before")
    @classmethod
    def _parse_comma_list(cls, value: object) -> object:
        return _split_commas(value)

    @property
    def resolved_voices_dir(self) -> Path:
        return self.voices_dir or self.data_dir / "voices"

    @property
    def local_base_url(self) -> str:
        """This API's own address; a wildcard bind is reached over loopback."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def resolved_public_base_url(self) -> str:
        return self.public_base_url.rstrip("/") if self.public_base_url else self.local_base_url

    @property
    def resolved_output_retention_s(self) -> int:
        return self.output_retention_s or self.presign_expiry_s

    @property
    def local_store_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def visibility_timeout_s(self) -> int:
        # Redis re-delivers unacked messages after this; it must exceed the longest run (celery#5935).
        return 2 * self.task_time_limit_s


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
