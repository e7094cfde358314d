"""What a synthesis job asks for, as the API stores it in the job record and the worker reads it back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AudioFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]

CONTENT_TYPES: dict[AudioFormat, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}

FILE_EXTENSIONS: dict[AudioFormat, str] = {
    "mp3": "mp3",
    "opus": "ogg",
    "aac": "aac",
    "flac": "flac",
    "wav": "wav",
    "pcm": "pcm",
}

OutputShape = Literal["openai", "custom"]
"""`openai`: `{"audio": base64, "_content_type", "audio_url"?}`; `custom`: the seed's custom API output."""


class Sampling(BaseModel):
    """Generation parameters of the custom API (CONTRACTS.md section 2) with its defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = 0.8
    top_k: int = 1000
    top_p: float = 0.95
    repetition_penalty: float = 1.2
    min_p: float = 0.0
    exaggeration: float = 0.0
    cfg_weight: float = 0.0
    norm_loudness: bool = True


class SynthesisSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    model: str
    voice: str | None = None
    """A registry voice name; the worker resolves it to a reference clip."""
    audio_prompt: str | None = None
    """A file in the voice store (custom API)."""
    language: str | None = None
    """A language tag (`fr`, `en-GB`): the request's, else its voice's; None: the engine's own language."""
    normalize: bool = True
    """Spell out numbers, symbols and abbreviations before chunking (English only; text/normalize.py)."""
    response_format: AudioFormat = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    sampling: Sampling = Sampling()
    output_shape: OutputShape = "openai"
    publish_audio: bool = False
    """Publish encoded audio on the job's event stream as it is made (a caller is waiting for the bytes)."""
    stream_pcm: bool = False
    """Publish 16-bit PCM pieces on the job's event stream as they are made, for `/stream/{id}` (custom API)."""
    store_output: bool = True
    """Upload the result to the object store (if one is configured) and put its URL in the output."""

    @property
    def heard_live(self) -> bool:
        """Someone takes the audio as it is made, so the engine streams it (which costs it more)."""
        return self.publish_audio or self.stream_pcm
