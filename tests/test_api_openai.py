"""The OpenAI-compatible routes driven by the official `openai` SDK against a real API server and worker."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import av
import httpx
import openai
import pytest
from openai import OpenAI, omit

from tests.conftest import Stack
from tests.support.api import assert_error
from tests.support.jobs import speech_text

pytestmark = pytest.mark.integration

SENTENCES = "Hello from the speech endpoint. This is the second sentence, a little longer than the first."
DEFAULT_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse")
# format: (Content-Type, container, codec, decoded sample rate)
FORMATS = {
    "mp3": ("audio/mpeg", "mp3", "mp3float", 24000),
    "opus": ("audio/opus", "ogg", "opus", 48000),
    "aac": ("audio/aac", "aac", "aac", 24000),
    "flac": ("audio/flac", "flac", "flac", 24000),
    "wav": ("audio/wav", "wav", "pcm_s16le", 24000),
}


@pytest.fixture(scope="module")
def client(stack: Stack) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{stack.base_url}/v1", api_key="x", max_retries=0, timeout=60) as sdk:
        yield sdk


def decode(data: bytes) -> tuple[str, str, int, int, float]:
    """(container, codec, sample rate, channels, seconds) of encoded audio, decoded for real."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return container.format.name, stream.codec_context.name, stream.rate, stream.channels, samples / stream.rate


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_speech_in_each_encoded_format(client: OpenAI, fmt: str) -> None:
    content_type, container, codec, rate = FORMATS[fmt]
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCES, response_format=fmt)  # type: ignore[arg-type]
    assert speech.response.headers["content-type"] == content_type
    assert speech.response.headers.get("x-request-id")
    assert decode(speech.content)[:4] == (container, codec, rate, 1)
    assert 2.0 < decode(speech.content)[4] < 15.0


def test_pcm_is_raw_16_bit_mono_at_the_stated_rate(client: OpenAI) -> None:
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCES, response_format="pcm")
    assert speech.response.headers["content-type"] == "audio/pcm"
    rate = int(speech.response.headers["x-sample-rate"])
    assert rate == 24000
    assert len(speech.content) % 2 == 0
    assert 2.0 < len(speech.content) / 2 / rate < 15.0
    # The same text as WAV carries the same samples behind a header: raw PCM is not a container.
    wav = client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCES, response_format="wav")
    assert not speech.content.startswith((b"RIFF", b"ID3", b"OggS", b"fLaC"))
    assert abs(len(wav.content) - len(speech.content)) <= 128


def test_a_control_character_does_not_silence_the_rest_of_the_text(client: OpenAI) -> None:
    def samples(text: str) -> int:
        return len(client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="pcm").content)

    # espeak is deterministic: a NUL read as a space gives exactly the audio of the space.
    assert samples("hello\u0000world, and more") == samples("hello world, and more") > samples("hello")


def test_default_format_is_mp3(client: OpenAI) -> None:
    speech = client.audio.speech.create(model="gpt-4o-mini-tts", voice="coral", input=SENTENCES)
    assert speech.response.headers["content-type"] == "audio/mpeg"
    assert decode(speech.content)[:2] == ("mp3", "mp3float")


def test_streaming_response_sends_audio_before_the_job_ends(client: OpenAI, stack: Stack) -> None:
    text = speech_text(6)
    chunks: list[bytes] = []
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="opus", speed=0.5
    ) as response:
        assert response.headers["content-type"] == "audio/opus"
        job_id = response.headers["x-job-id"]
        for chunk in response.iter_bytes():
            if not chunks:
                # The first bytes are here while the worker is still on later chunks of the text.
                status = httpx.get(f"{stack.base_url}/status/{job_id}").json()["status"]
                assert status == "IN_PROGRESS"
            chunks.append(chunk)
    assert len(chunks) > 1
    container, codec, _, _, seconds = decode(b"".join(chunks))
    assert (container, codec) == ("ogg", "opus")
    assert seconds > 30


def read_sse(response: httpx.Response) -> list[str]:
    return [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]


@pytest.mark.parametrize("fmt", ["mp3", "wav"])
def test_sse_stream_of_base64_deltas_then_done(stack: Stack, fmt: str) -> None:
    body = {"model": "tts-1", "input": speech_text(4), "voice": "alloy", "response_format": fmt, "stream_format": "sse"}
    with httpx.stream("POST", f"{stack.base_url}/v1/audio/speech", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        data = read_sse(response)
    assert data[-1] == "[DONE]"
    events = [json.loads(item) for item in data[:-1]]
    deltas, done = events[:-1], events[-1]
    assert len(deltas) >= 1 and all(event["type"] == "speech.audio.delta" for event in deltas)
    assert done["type"] == "speech.audio.done"
    usage = done["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    audio = b"".join(base64.b64decode(event["audio"]) for event in deltas)
    container, _, rate, channels, seconds = decode(audio)
    assert (container, rate, channels) == (FORMATS[fmt][1], 24000, 1)
    assert seconds > 5


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"voice": "nobody"}, "voice"),
        ({"voice": {"id": "nobody"}}, "voice"),
        ({"input": omit}, "input"),
        ({"input": ""}, "input"),
        ({"input": "x" * 4097}, "input"),
        ({"input": "...!?"}, "input"),
        ({"input": " \u3000\n"}, "input"),
        ({"response_format": "ogg"}, "response_format"),
        ({"speed": 5}, "speed"),
        ({"speed": "1.5"}, "speed"),
        ({"speed": 0.1}, "speed"),
        ({"model": "gpt-9-tts"}, "model"),
        ({"model": omit}, "model"),
        ({"instructions": "y" * 4097}, "instructions"),
        ({"stream_format": "chunks"}, "stream_format"),
        ({"extra_body": {"temperature": 0.5}}, "temperature"),
    ],
    ids=lambda value: json.dumps(value, default=str)[:40] if isinstance(value, dict) else value,
)
def test_bad_requests_raise_bad_request_error_with_param(client: OpenAI, overrides: dict[str, Any], param: str) -> None:
    request: dict[str, Any] = {"model": "tts-1", "voice": "alloy", "input": "Hello.", **overrides}
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.speech.create(**request)
    error = raised.value
    assert error.status_code == 400
    assert error.param == param
    assert error.type == "invalid_request_error"
    assert error.response.headers.get("x-request-id")


def test_unknown_voice_message_lists_the_available_voices(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hello.")
    message = raised.value.message
    assert "nobody" in message
    assert all(name in message for name in DEFAULT_VOICES)


def test_a_voice_of_neither_accepted_form_says_what_each_wanted(stack: Stack) -> None:
    body = {"model": "tts-1", "voice": 123, "input": "Hello."}
    response = httpx.post(f"{stack.base_url}/v1/audio/speech", json=body)
    error = response.json()["error"]
    assert (response.status_code, error["param"], error["code"]) == (400, "voice", "invalid_value")
    assert error["message"].startswith("Invalid value for 'voice': ")
    assert "valid string" in error["message"] and "valid dictionary" in error["message"]
    assert "voice.str" not in error["message"]


def test_voice_given_as_an_id_object(client: OpenAI) -> None:
    speech = client.audio.speech.create(model="tts-1", voice={"id": "alloy"}, input=SENTENCES, response_format="wav")
    assert decode(speech.content)[:3] == ("wav", "pcm_s16le", 24000)


def test_models_list_and_retrieve(client: OpenAI) -> None:
    models = client.models.list()
    ids = [model.id for model in models.data]
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"} <= set(ids)
    assert all(model.object == "model" and model.owned_by for model in models.data)
    assert client.models.retrieve("tts-1").id == "tts-1"
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gpt-9-tts")
    assert raised.value.param == "model"


def test_voices_list(stack: Stack) -> None:
    response = httpx.get(f"{stack.base_url}/v1/audio/voices")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    by_name = {voice["name"]: voice for voice in body["data"]}
    assert set(DEFAULT_VOICES) | {"marin", "cedar"} <= set(by_name)
    assert all(isinstance(voice["enabled"], bool) and "description" in voice for voice in by_name.values())


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "param"),
    [
        ("GET", "/v1/no-such-route", None, 404, None),
        ("GET", "/no-such-route", None, 404, None),
        ("GET", "/v1/audio/speech", None, 405, None),
        ("DELETE", "/v1/models", None, 405, None),
        ("POST", "/v1/audio/speech", b"{not json", 400, None),
        ("POST", "/v1/audio/speech", b"[1, 2]", 400, None),
        ("POST", "/v1/audio/speech", b'{"model": "tts-1", "voice": "alloy", "input": 5}', 400, "input"),
        ("POST", "/v1/audio/speech", b'{"model": "tts-1", "voice": 7, "input": "Hi."}', 400, "voice"),
    ],
)
def test_every_error_has_the_openai_shape(
    stack: Stack, method: str, path: str, body: bytes | None, status: int, param: str | None
) -> None:
    headers = {"content-type": "application/json"}
    response = httpx.request(method, f"{stack.base_url}{path}", content=body, headers=headers)
    assert_error(response, status, param)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/audio/speech", {"model": "tts-1", "voice": "alloy", "input": "Hi."}),
        ("POST", "/v1/audio/speech", {"model": "tts-1", "voice": "nobody", "input": "Hi."}),
        ("GET", "/v1/models", None),
        ("GET", "/v1/nothing-here", None),
        ("GET", "/health", None),
        ("GET", "/openapi.json", None),
    ],
)
def test_every_response_carries_a_request_id(stack: Stack, method: str, path: str, body: object) -> None:
    response = httpx.request(method, f"{stack.base_url}{path}", json=body, timeout=60)
    generated = response.headers.get("x-request-id")
    assert generated
    supplied = httpx.request(
        method, f"{stack.base_url}{path}", json=body, headers={"x-request-id": "req-abc-123"}, timeout=60
    )
    assert supplied.status_code == response.status_code
    assert supplied.headers["x-request-id"] == "req-abc-123"
    again = httpx.request(method, f"{stack.base_url}{path}", json=body, timeout=60)
    assert again.headers["x-request-id"] != generated
