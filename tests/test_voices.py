"""The voice registry and voice store, on real files and real audio."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.settings import Settings
from voices import (
    NotBuiltinError,
    UnknownVoiceError,
    VoiceExistsError,
    VoicePathError,
    VoiceRegistry,
    VoiceStoreError,
    VoiceUploadError,
)
from workers.engines.base import Audio

OPENAI_VOICES = [
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx",
    "nova", "sage", "shimmer", "verse", "marin", "cedar",
]  # fmt: skip


def sine(seconds: float, rate: int) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    samples: Audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return samples


def wav_bytes(seconds: float, rate: int = 24000, channels: int = 1) -> bytes:
    samples = (sine(seconds, rate) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav_file:
        wav_file.setnchannels(channels)
        wav_file.setsampwidth(2)
        wav_file.setframerate(rate)
        wav_file.writeframes(np.repeat(samples, channels).tobytes())
    return buffer.getvalue()


def mp3_bytes(seconds: float, rate: int = 44100) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="stereo")
        pcm = sine(seconds, rate)
        frame = av.AudioFrame.from_ndarray(np.stack([pcm, pcm]), format="fltp", layout="stereo")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def read_wav(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as wav_file:
        return (
            wav_file.getnchannels(),
            wav_file.getsampwidth(),
            wav_file.getframerate(),
            wav_file.getnframes(),
        )


def read_voices_json(store: Path) -> dict[str, dict[str, object]]:
    result: dict[str, dict[str, object]] = json.loads((store / "voices.json").read_text())
    return result


def write_voices_json(store: Path, document: object) -> None:
    (store / "voices.json").write_text(json.dumps(document))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "voices"
    path.mkdir()
    return path


@pytest.fixture
def registry(store: Path) -> VoiceRegistry:
    return VoiceRegistry(store, max_upload_bytes=1_000_000, max_duration_s=5.0)


# --- defaults and resolution ---


def test_defaults_without_voices_json(registry: VoiceRegistry, store: Path) -> None:
    voices = registry.list_voices()

    assert [voice.name for voice in voices] == OPENAI_VOICES
    assert all(voice.enabled and voice.description for voice in voices)
    assert not any(voice.has_reference_audio for voice in voices)
    assert not (store / "voices.json").exists()


def test_default_voice_without_clip_resolves_to_builtin_voice(registry: VoiceRegistry) -> None:
    resolved = registry.resolve("alloy")

    assert resolved.name == "alloy"
    assert resolved.reference_path is None
    assert resolved.description


def test_default_voice_with_clip_resolves_to_it(registry: VoiceRegistry, store: Path) -> None:
    (store / "voice_nova.wav").write_bytes(wav_bytes(0.5))

    assert registry.resolve("nova").reference_path == (store / "voice_nova.wav").resolve()
    assert {v.name: v.has_reference_audio for v in registry.list_voices()}["nova"]


def test_missing_store_directory_serves_defaults(tmp_path: Path) -> None:
    registry = VoiceRegistry(tmp_path / "absent", max_upload_bytes=1000, max_duration_s=1.0)

    assert registry.resolve("cedar").reference_path is None


def test_unknown_voice_error_lists_available_voices(registry: VoiceRegistry) -> None:
    with pytest.raises(UnknownVoiceError) as caught:
        registry.resolve("nobody")

    assert caught.value.voice == "nobody"
    assert caught.value.available == OPENAI_VOICES
    assert str(caught.value) == f"Voice 'nobody' is not available. Available voices: {', '.join(OPENAI_VOICES)}"


def test_disabled_voice_is_unknown_and_not_listed_as_available(registry: VoiceRegistry, store: Path) -> None:
    write_voices_json(store, {"on": {"audio_file": "on.wav"}, "off": {"audio_file": "off.wav", "enabled": False}})

    with pytest.raises(UnknownVoiceError) as caught:
        registry.resolve("off")

    assert caught.value.available == ["on"]
    assert "Available voices: on" in str(caught.value)


def test_file_schema_defaults_and_ignores_extra_keys(registry: VoiceRegistry, store: Path) -> None:
    write_voices_json(store, {"x": {"audio_file": "x.wav", "future_key": 1}})

    [info] = registry.list_voices()

    assert (info.name, info.description, info.enabled) == ("x", None, True)


# --- hot reload ---


def test_hand_edit_is_picked_up_without_a_new_registry(registry: VoiceRegistry, store: Path) -> None:
    assert registry.resolve("alloy").name == "alloy"

    write_voices_json(store, {"first": {"audio_file": "a.wav"}})
    assert registry.resolve("first").name == "first"
    with pytest.raises(UnknownVoiceError):
        registry.resolve("alloy")

    # An in-place edit of the same size: only the mtime tells it apart.
    path = store / "voices.json"
    before = path.stat()
    path.write_text(json.dumps({"other": {"audio_file": "a.wav"}}))
    assert path.stat().st_size == before.st_size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))

    assert registry.resolve("other").name == "other"


def test_removing_voices_json_restores_defaults(registry: VoiceRegistry, store: Path) -> None:
    write_voices_json(store, {"only": {"audio_file": "a.wav"}})
    assert [v.name for v in registry.list_voices()] == ["only"]

    (store / "voices.json").unlink()

    assert [v.name for v in registry.list_voices()] == OPENAI_VOICES


@pytest.mark.parametrize(
    "bad_content",
    [
        "{not json",
        json.dumps({"x": {"description": "no audio_file"}}),
        json.dumps({"x": {"audio_file": "../outside.wav"}}),
        json.dumps(["not", "a", "mapping"]),
    ],
)
def test_bad_voices_json_keeps_last_good_and_logs_once(
    registry: VoiceRegistry, store: Path, caplog: pytest.LogCaptureFixture, bad_content: str
) -> None:
    write_voices_json(store, {"good": {"audio_file": "good.wav"}})
    assert registry.resolve("good").name == "good"

    (store / "voices.json").write_text(bad_content)
    with caplog.at_level(logging.ERROR, logger="voices"):
        for _ in range(3):
            assert registry.resolve("good").name == "good"

    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "voices.json is invalid" in errors[0].getMessage()


def test_bad_voices_json_from_the_start_serves_defaults(registry: VoiceRegistry, store: Path) -> None:
    (store / "voices.json").write_text("{broken")

    assert [v.name for v in registry.list_voices()] == OPENAI_VOICES


def test_fixed_voices_json_is_loaded_again(registry: VoiceRegistry, store: Path) -> None:
    (store / "voices.json").write_text("{broken")
    registry.list_voices()

    write_voices_json(store, {"fixed": {"audio_file": "f.wav"}})

    assert registry.resolve("fixed").name == "fixed"


# --- audio_prompt and path safety ---


@pytest.mark.parametrize(
    "audio_prompt",
    [
        "../etc/passwd",
        "/etc/passwd",
        "a/../../b",
        "..\\x",
        "bad\x00name.wav",
        "",
        ".voices.lock",
        "voices.json",
    ],
)
def test_unsafe_audio_prompts_are_rejected(registry: VoiceRegistry, store: Path, audio_prompt: str) -> None:
    with pytest.raises(VoicePathError) as caught:
        registry.resolve_prompt(audio_prompt)

    assert str(store) not in str(caught.value)


def test_symlink_pointing_outside_the_store_is_rejected(registry: VoiceRegistry, store: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.wav"
    secret.write_bytes(wav_bytes(0.1))
    (store / "escape.wav").symlink_to(secret)
    write_voices_json(store, {"sneaky": {"audio_file": "escape.wav"}})

    with pytest.raises(VoicePathError, match="outside the voice store") as caught:
        registry.resolve_prompt("escape.wav")
    assert str(tmp_path) not in str(caught.value)
    assert registry.resolve("sneaky").reference_path is None


def test_symlink_inside_the_store_is_followed(registry: VoiceRegistry, store: Path) -> None:
    (store / "real.wav").write_bytes(wav_bytes(0.1))
    (store / "alias.wav").symlink_to(store / "real.wav")

    assert registry.resolve_prompt("alias.wav") == (store / "real.wav").resolve()


def test_resolve_prompt_finds_files_and_voice_names(registry: VoiceRegistry, store: Path) -> None:
    (store / "clip.wav").write_bytes(wav_bytes(0.1))
    (store / "speakers").mkdir()
    (store / "speakers" / "bob.wav").write_bytes(wav_bytes(0.1))
    (store / "voice_echo.wav").write_bytes(wav_bytes(0.1))

    assert registry.resolve_prompt("clip.wav") == (store / "clip.wav").resolve()
    assert registry.resolve_prompt("speakers/bob.wav") == (store / "speakers" / "bob.wav").resolve()
    assert registry.resolve_prompt("echo") == (store / "voice_echo.wav").resolve()


def test_resolve_prompt_missing_file_or_clip_is_an_error(registry: VoiceRegistry, store: Path) -> None:
    with pytest.raises(VoicePathError, match="does not name a file"):
        registry.resolve_prompt("missing.wav")
    with pytest.raises(VoicePathError, match="has no reference audio"):
        registry.resolve_prompt("alloy")
    (store / "folder").mkdir()
    with pytest.raises(VoicePathError, match="does not name a file"):
        registry.resolve_prompt("folder")


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(audio_prompt=st.text(alphabet=st.sampled_from(list("./\\\x00ab")), max_size=12) | st.text(max_size=12))
def test_resolve_prompt_never_leaves_the_store(registry: VoiceRegistry, store: Path, audio_prompt: str) -> None:
    try:
        resolved = registry.resolve_prompt(audio_prompt)
    except VoicePathError:
        return
    assert resolved.is_relative_to(store.resolve())


# --- uploads ---


def test_upload_wav_is_stored_as_mono_16_bit_wav(registry: VoiceRegistry, store: Path) -> None:
    entry = registry.add_voice("narrator", wav_bytes(1.0, rate=22050, channels=2), "n.wav", "Calm narrator")

    assert (entry.name, entry.audio_file, entry.description, entry.enabled) == (
        "narrator",
        "narrator.wav",
        "Calm narrator",
        True,
    )
    assert read_wav(store / "narrator.wav") == (1, 2, 22050, 22050)
    assert registry.resolve("narrator").reference_path == (store / "narrator.wav").resolve()


def test_upload_mp3_lands_as_wav(registry: VoiceRegistry, store: Path) -> None:
    registry.add_voice("from-mp3", mp3_bytes(1.0), "clip.mp3", None)

    channels, width, rate, frames = read_wav(store / "from-mp3.wav")
    assert (channels, width, rate) == (1, 2, 44100)
    assert abs(frames / rate - 1.0) < 0.1


def test_first_write_materialises_defaults(registry: VoiceRegistry, store: Path) -> None:
    registry.add_voice("extra", wav_bytes(0.5), None, None, enabled=False)

    document = read_voices_json(store)
    assert list(document) == [*OPENAI_VOICES, "extra"]
    assert document["alloy"]["audio_file"] == "voice_alloy.wav"
    assert document["extra"] == {"audio_file": "extra.wav", "enabled": False}
    with pytest.raises(UnknownVoiceError):
        registry.resolve("extra")


def test_oversized_upload_is_rejected(store: Path) -> None:
    registry = VoiceRegistry(store, max_upload_bytes=10_000, max_duration_s=5.0)

    with pytest.raises(VoiceUploadError, match="the limit is 10000 bytes") as caught:
        registry.add_voice("big", wav_bytes(1.0), "big.wav", None)
    assert caught.value.param == "file"
    assert not (store / "big.wav").exists()


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (b"definitely not audio" * 50, "could not be decoded as audio"),
        (b"", "is empty"),
        (wav_bytes(0.0), "contains no audio samples"),
        (wav_bytes(6.5), "is 6.5 s long; reference clips may be at most 5 s"),
    ],
)
def test_bad_uploads_are_rejected_with_clear_messages(
    registry: VoiceRegistry, store: Path, audio: bytes, message: str
) -> None:
    with pytest.raises(VoiceUploadError, match=message):
        registry.add_voice("bad", audio, "upload.bin", None)
    assert not (store / "bad.wav").exists()
    assert not (store / "voices.json").exists()


def test_file_without_audio_stream_is_rejected(registry: VoiceRegistry) -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=1)
        stream.width, stream.height = 16, 16
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), dtype=np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)

    with pytest.raises(VoiceUploadError, match="has no audio stream"):
        registry.add_voice("video", buffer.getvalue(), "v.mkv", None)


@pytest.mark.parametrize("name", ["", "-dash", "a..b", "sp ace", "a/b", "x" * 65, "new\nline", "ünï"])
def test_invalid_voice_names_are_rejected(registry: VoiceRegistry, name: str) -> None:
    with pytest.raises(VoiceUploadError, match="Invalid voice name") as caught:
        registry.add_voice(name, wav_bytes(0.5), None, None)
    assert caught.value.param == "name"


def test_duplicate_voice_is_rejected(registry: VoiceRegistry) -> None:
    registry.add_voice("twin", wav_bytes(0.5), None, None)

    with pytest.raises(VoiceExistsError) as caught:
        registry.add_voice("twin", wav_bytes(0.5), None, None)
    assert caught.value.name == "twin"
    with pytest.raises(VoiceExistsError):
        registry.add_voice("alloy", wav_bytes(0.5), None, None)


def test_upload_does_not_overwrite_a_clip_another_voice_uses(registry: VoiceRegistry, store: Path) -> None:
    write_voices_json(store, {"owner": {"audio_file": "taken.wav"}})

    with pytest.raises(VoiceExistsError, match="already used by voice 'owner'"):
        registry.add_voice("taken", wav_bytes(0.5), None, None)


def test_writes_refuse_to_replace_an_invalid_voices_json(registry: VoiceRegistry, store: Path) -> None:
    (store / "voices.json").write_text("{hand edit in progress")

    with pytest.raises(VoiceStoreError):
        registry.add_voice("new", wav_bytes(0.5), None, None)
    with pytest.raises(VoiceStoreError):
        registry.delete_voice("alloy")
    assert (store / "voices.json").read_text() == "{hand edit in progress"


def test_writes_leave_no_temporary_files(registry: VoiceRegistry, store: Path) -> None:
    registry.add_voice("neat", wav_bytes(0.5), None, None)
    registry.update_voice("neat", description="tidy")
    registry.delete_voice("neat")

    assert sorted(p.name for p in store.iterdir()) == [".voices.lock", "voices.json"]
    assert (store / "voices.json").stat().st_mode & 0o777 == 0o644


# --- update and delete ---


def test_update_is_reflected_in_voices_json(registry: VoiceRegistry, store: Path) -> None:
    registry.add_voice("host", wav_bytes(0.5), None, "Old")

    entry = registry.update_voice("host", description="New")
    assert (entry.description, entry.enabled) == ("New", True)
    entry = registry.update_voice("host", enabled=False)
    assert (entry.description, entry.enabled) == ("New", False)

    assert read_voices_json(store)["host"] == {
        "audio_file": "host.wav",
        "description": "New",
        "enabled": False,
    }
    with pytest.raises(UnknownVoiceError):
        registry.resolve("host")
    registry.update_voice("host", enabled=True)
    assert registry.resolve("host").description == "New"


def test_update_unknown_voice_is_an_error(registry: VoiceRegistry) -> None:
    with pytest.raises(UnknownVoiceError):
        registry.update_voice("ghost", description="boo")


def test_delete_removes_entry_and_clip(registry: VoiceRegistry, store: Path) -> None:
    registry.add_voice("gone", wav_bytes(0.5), None, None)

    registry.delete_voice("gone")

    assert "gone" not in read_voices_json(store)
    assert not (store / "gone.wav").exists()
    with pytest.raises(UnknownVoiceError):
        registry.resolve("gone")
    with pytest.raises(UnknownVoiceError):
        registry.delete_voice("gone")


def test_delete_default_voice_materialises_the_rest(registry: VoiceRegistry, store: Path) -> None:
    (store / "voice_ash.wav").write_bytes(wav_bytes(0.1))

    registry.delete_voice("ash")

    assert list(read_voices_json(store)) == [name for name in OPENAI_VOICES if name != "ash"]
    # Kept for a restore: a built-in's clip is the operator's, not an upload.
    assert (store / "voice_ash.wav").exists()


def test_a_deleted_or_changed_builtin_is_restored_as_it_ships(registry: VoiceRegistry, store: Path) -> None:
    (store / "voice_ash.wav").write_bytes(wav_bytes(0.1))
    shipped = {voice.name: voice for voice in registry.list_voices()}["ash"]
    assert shipped.builtin and shipped.has_reference_audio
    registry.delete_voice("ash")
    registry.update_voice("nova", description="Mine now", enabled=False)

    registry.restore_builtin("ash")
    registry.restore_builtin("nova")

    listed = {voice.name: voice for voice in registry.list_voices()}
    assert listed["ash"] == shipped
    assert listed["nova"].enabled and listed["nova"].description == "Bright and energetic" and listed["nova"].builtin
    assert registry.resolve("ash").reference_path == (store / "voice_ash.wav").resolve()


def test_only_builtins_are_restored_and_an_upload_under_the_name_is_kept(registry: VoiceRegistry) -> None:
    registry.add_voice("mine", wav_bytes(0.5), None, None)
    assert not {voice.name: voice for voice in registry.list_voices()}["mine"].builtin
    with pytest.raises(NotBuiltinError, match="alloy, ash"):
        registry.restore_builtin("mine")
    registry.delete_voice("echo")
    registry.add_voice("echo", wav_bytes(0.5), None, "An upload under a freed built-in name")
    assert not {voice.name: voice for voice in registry.list_voices()}["echo"].builtin
    with pytest.raises(VoiceExistsError, match="uploaded voice"):
        registry.restore_builtin("echo")


def test_delete_keeps_a_clip_another_voice_still_uses(registry: VoiceRegistry, store: Path) -> None:
    (store / "shared.wav").write_bytes(wav_bytes(0.1))
    write_voices_json(store, {"one": {"audio_file": "shared.wav"}, "two": {"audio_file": "shared.wav"}})

    registry.delete_voice("one")

    assert (store / "shared.wav").exists()
    assert registry.resolve("two").reference_path == (store / "shared.wav").resolve()


# --- concurrency and construction ---


def test_concurrent_uploads_lose_nothing(store: Path) -> None:
    # One registry per thread, as separate API processes would have; each takes its own flock.
    names = [f"speaker-{index}" for index in range(12)]
    clip = wav_bytes(0.2)
    barrier = threading.Barrier(len(names))
    failures: list[BaseException] = []

    def upload(name: str) -> None:
        registry = VoiceRegistry(store, max_upload_bytes=1_000_000, max_duration_s=5.0)
        barrier.wait()
        try:
            registry.add_voice(name, clip, None, None)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=upload, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert set(read_voices_json(store)) == {*OPENAI_VOICES, *names}
    assert all((store / f"{name}.wav").is_file() for name in names)


def test_from_settings_uses_the_configured_store(tmp_path: Path) -> None:
    configured = Settings(_env_file=None, data_dir=tmp_path, max_voice_upload_bytes=123)  # type: ignore[call-arg]

    registry = VoiceRegistry.from_settings(configured)
    with pytest.raises(VoiceUploadError, match="limit is 123 bytes"):
        registry.add_voice("x", wav_bytes(0.5), None, None)
    assert not (tmp_path / "voices" / "voices.json").exists()
