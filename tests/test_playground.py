"""The playground page in a real browser (Debian's chromium through Playwright) against a real API and worker, with
API keys on, so every call the page makes must carry the key the user typed."""

from __future__ import annotations

import io
import re
import time
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from tests.conftest import Stack, redis_db_url, start_stack, stop_stack
from tests.support.browser import artifact, chromium
from tests.support.jobs import speech_text
from tests.support.processes import start_api
from tests.support.s3 import free_port

pytestmark = pytest.mark.integration

KEY = "playground-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SENTENCE = "The playground speaks this sentence."
# Several chunks of text (at most 300 characters each), so the worker is still making audio after the first.
LONG_TEXT = speech_text(20)
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("playground"), redis_db_url(10), API_KEYS=KEY)
    yield running
    stop_stack(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture
def fresh_page(browser: Browser) -> Iterator[Page]:
    """A page in its own browser context (empty storage), failing the test on any uncaught script error."""
    context = browser.new_context()
    page = context.new_page()
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    yield page
    context.close()
    assert script_errors == []


def open_playground(page: Page, base_url: str) -> Page:
    """The playground, opened and given the API key as a user would."""
    page.goto(f"{base_url}/playground")
    page.get_by_role("textbox", name="API key").fill(KEY)
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#key-status")).to_have_text("Connected.")
    return page


@pytest.fixture
def page(fresh_page: Page, stack: Stack) -> Page:
    return open_playground(fresh_page, stack.base_url)


def api_voices(stack: Stack) -> dict[str, dict[str, object]]:
    response = httpx.get(f"{stack.base_url}/v1/audio/voices", headers=AUTH)
    assert response.status_code == 200, response.text
    return {voice["name"]: voice for voice in response.json()["data"]}


def clip_wav(seconds: float = 2.0, rate: int = 24_000) -> bytes:
    """A voice-like test clip: a 140 Hz tone with harmonics, its loudness swelling like syllables."""
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 6))
    samples = (0.3 * tone * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * 32767 / 2.3).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def speak(page: Page, text: str, *, response_format: str = "pcm", speed: float = 1.0) -> None:
    page.get_by_label("Text").fill(text)
    page.get_by_label("Format").select_option(response_format)
    page.get_by_label("Speed").fill(str(speed))
    page.get_by_role("button", name="Speak").click()


def number(page: Page, selector: str, attribute: str) -> float:
    value = page.locator(selector).get_attribute(attribute)
    assert value is not None, f"{selector} has no {attribute}"
    return float(value)


def new_voice_name() -> str:
    return f"pg-{uuid.uuid4().hex[:8]}"


def test_page_and_its_files_load_without_a_key(stack: Stack) -> None:
    for path, content_type in [
        ("/playground/", "text/html"),
        ("/playground/playground.js", "text/javascript"),
        ("/playground/playground.css", "text/css"),
    ]:
        response = httpx.get(f"{stack.base_url}{path}")
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(content_type)
    assert httpx.get(f"{stack.base_url}/v1/audio/voices").status_code == 401


def test_asks_for_a_key_and_keeps_it_in_this_browser_only(fresh_page: Page, stack: Stack) -> None:
    page = fresh_page
    page.goto(f"{stack.base_url}/playground/")
    expect(page.get_by_role("alert")).to_contain_text("Invalid or missing API key. Enter a valid API key above.")
    expect(page.get_by_role("textbox", name="API key")).to_be_focused()
    page.get_by_role("textbox", name="API key").fill("not-the-key")
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#key-status")).to_have_text("The service refused this key.")
    page.get_by_role("textbox", name="API key").fill(KEY)
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#key-status")).to_have_text("Connected.")
    expect(page.get_by_role("alert")).to_be_empty()
    # Kept across a reload, in the browser's storage, and never sent anywhere but in the Authorization header.
    page.reload()
    expect(page.get_by_label("Voice", exact=True)).to_contain_text("alloy")
    assert page.evaluate("Object.values(localStorage)") == [KEY]
    assert page.context.cookies() == []
    page.get_by_role("button", name="Forget key").click()
    assert page.evaluate("localStorage.length") == 0


def test_lists_models_voices_and_the_queue(page: Page, stack: Stack) -> None:
    models = [model["id"] for model in httpx.get(f"{stack.base_url}/v1/models", headers=AUTH).json()["data"]]
    expect(page.get_by_label("Model").locator("option")).to_have_text(models)
    voices = api_voices(stack)
    expect(page.get_by_label("Voice", exact=True).locator("option")).to_have_count(len(voices))
    expect(page.locator("#voices-table tbody tr")).to_have_count(len(voices))
    expect(page.locator("#voices-table tbody tr").first).to_contain_text("alloy")
    health = httpx.get(f"{stack.base_url}/health", headers=AUTH).json()
    expect(page.locator("#health-idle")).to_have_text(str(health["workers"]["idle"]))
    assert health["workers"]["idle"] >= 1
    expect(page.locator("#health-completed")).to_have_text(str(health["jobs"]["completed"]))


def played_through(page: Page, text: str, response_format: str = "pcm", speed: float = 1.0) -> float:
    """Speaks `text` and waits for the end; the seconds of audio it played, which took at least that long."""
    started = time.monotonic()
    speak(page, text, response_format=response_format, speed=speed)
    expect(page.locator("#result")).to_have_attribute("data-state", "done", timeout=WAIT_MS)
    elapsed = time.monotonic() - started
    played = number(page, "#played", "data-seconds")
    assert 0 < played <= elapsed
    return played


def test_speaks_a_sentence_and_shows_the_job_and_time_to_first_audio(page: Page, stack: Stack) -> None:
    played = played_through(page, SENTENCE)
    assert played > 1
    first_audio_ms = number(page, "#first-audio", "data-ms")
    assert 0 < first_audio_ms <= number(page, "#complete", "data-ms")
    shown = page.locator("#first-audio").inner_text()
    assert shown.endswith(" ms") and abs(int(shown.removesuffix(" ms")) - first_audio_ms) <= 0.5
    job_id = page.locator("#job-id").inner_text()
    status = httpx.get(f"{stack.base_url}/status/{job_id}", headers=AUTH)
    assert status.status_code == 200 and status.json()["status"] == "COMPLETED"
    # What it offers to download is what it played: 16-bit samples at the rate the service announced.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download speech.pcm").click()
    assert download.value.suggested_filename == "speech.pcm"
    pcm = Path(download.value.path()).read_bytes()
    assert len(pcm) / 2 / stack.settings.output_sample_rate == pytest.approx(played, abs=1e-6)
    expect(page.get_by_role("alert")).to_be_empty()
    # The queue figures are refreshed once the speech is over.
    completed = httpx.get(f"{stack.base_url}/health", headers=AUTH).json()["jobs"]["completed"]
    assert completed >= 1
    expect(page.locator("#health-completed")).to_have_text(str(completed))
    page.screenshot(path=artifact("playground.png"), full_page=True)


def test_audio_plays_while_the_rest_is_still_arriving(page: Page) -> None:
    speak(page, LONG_TEXT, response_format="pcm")
    # Seen the moment the first audio is out: the page is playing and the response has not ended yet.
    at_first_audio = page.wait_for_function(
        """() => document.getElementById("first-audio").dataset.ms !== undefined && {
            state: document.getElementById("result").dataset.state,
            complete: document.getElementById("complete").dataset.ms ?? null,
        }""",
        polling=5,
        timeout=WAIT_MS,
    ).json_value()
    assert at_first_audio == {"state": "playing", "complete": None}
    expect(page.locator("#complete")).to_have_attribute("data-ms", re.compile(r"\d"), timeout=WAIT_MS)
    assert number(page, "#first-audio", "data-ms") < number(page, "#complete", "data-ms")
    expect(page.locator("#result")).to_have_attribute("data-state", "playing")
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.locator("#result")).to_have_attribute("data-state", "stopped")
    assert 0 < number(page, "#played", "data-seconds") < 30
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_disabled()


@pytest.mark.parametrize("response_format", ["wav", "mp3", "aac", "opus", "flac"])
def test_every_format_plays(page: Page, response_format: str) -> None:
    assert played_through(page, "One, two, three.", response_format, speed=2.0) > 0.3
    link = page.get_by_role("link", name=f"Download speech.{response_format}")
    expect(link).to_have_attribute("download", f"speech.{response_format}")


def test_uploads_a_clip_then_disables_enables_and_deletes_the_voice(page: Page, stack: Stack, tmp_path: Path) -> None:
    clip = tmp_path / "narrator.wav"
    clip.write_bytes(clip_wav())
    name = new_voice_name()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Description").fill("A test narrator")
    page.get_by_label("Clip from a file").set_input_files(clip)
    page.get_by_role("button", name="Add voice").click()
    expect(page.locator("#upload-status")).to_have_text(f"Added the voice {name}; it is selected for speaking.")
    expect(page.get_by_label("Voice", exact=True)).to_have_value(name)
    assert api_voices(stack)[name] == {
        "name": name, "description": "A test narrator", "enabled": True, "has_reference_audio": True, "language": None,
        "builtin": False,
    }  # fmt: skip
    row = page.locator("#voices-table tbody tr", has_text=name)
    expect(row).to_contain_text("A test narrator")

    played_through(page, SENTENCE)

    page.get_by_role("button", name=f"Disable {name}").click()
    expect(row).to_contain_text("disabled")
    expect(page.get_by_role("button", name=f"Enable {name}")).to_be_focused()
    assert api_voices(stack)[name]["enabled"] is False
    page.get_by_role("button", name=f"Enable {name}").click()
    expect(row).to_contain_text("enabled")
    assert api_voices(stack)[name]["enabled"] is True

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {name}").click()
    expect(page.locator("#voices-status")).to_have_text(f"Deleted {name}.")
    expect(row).to_have_count(0)
    assert name not in api_voices(stack)


def test_declining_the_delete_keeps_the_voice(page: Page, stack: Stack) -> None:
    dialogs: list[Dialog] = []

    def decline(dialog: Dialog) -> None:
        dialogs.append(dialog)
        dialog.dismiss()

    page.once("dialog", decline)
    page.get_by_role("button", name="Delete alloy").click()
    expect(page.get_by_role("button", name="Delete alloy")).to_be_visible()
    assert [dialog.message for dialog in dialogs] == ["Delete the voice alloy? Its reference clip is deleted too."]
    assert "alloy" in api_voices(stack)


def test_records_a_clip_from_the_microphone(page: Page, stack: Stack) -> None:
    page.get_by_role("button", name="Record from the microphone").click()
    expect(page.locator("#recording-status")).to_have_text("Recording…")
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Stop recording").click()
    expect(page.locator("#recording-status")).to_contain_text("it is the clip that Add voice sends")
    name = new_voice_name()
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Add voice").click()
    expect(page.locator("#upload-status")).to_have_text(f"Added the voice {name}; it is selected for speaking.")
    assert api_voices(stack)[name]["has_reference_audio"] is True


def test_a_clip_that_is_not_audio_is_reported_in_words(page: Page, tmp_path: Path) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_text("these are not samples")
    page.get_by_label("Name").fill(new_voice_name())
    page.get_by_label("Clip from a file").set_input_files(notes)
    page.get_by_role("button", name="Add voice").click()
    expect(page.get_by_role("alert")).to_have_text(
        "New voice: 'notes.wav' could not be decoded as audio (parameter: file)"
    )


def test_an_unknown_voice_is_reported_in_words(page: Page, stack: Stack) -> None:
    # The page lists a voice that someone else deletes before it is used.
    name = new_voice_name()
    added = httpx.post(
        f"{stack.base_url}/v1/audio/voices", headers=AUTH, data={"name": name}, files={"file": ("c.wav", clip_wav())}
    )
    assert added.status_code == 201, added.text
    page.get_by_role("button", name="Refresh voices").click()
    page.get_by_label("Voice", exact=True).select_option(name)
    assert httpx.delete(f"{stack.base_url}/v1/audio/voices/{name}", headers=AUTH).status_code == 200
    speak(page, SENTENCE)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(f"Speak: Voice '{name}' is not available. Available voices: alloy,")
    expect(alert).to_contain_text("(parameter: voice)")
    expect(page.locator("#result")).to_have_attribute("data-state", "failed")
    # A request that works afterwards clears the error.
    page.get_by_label("Voice", exact=True).select_option("alloy")
    played_through(page, SENTENCE)
    expect(alert).to_be_empty()


def test_a_stream_cut_off_midway_is_reported_in_words(fresh_page: Page, stack: Stack, tmp_path: Path) -> None:
    # A second API on the same queue, killed while it streams: the browser sees the connection drop mid-body.
    port = free_port()
    api = start_api(stack.env, tmp_path, port)
    try:
        page = open_playground(fresh_page, f"http://127.0.0.1:{port}")
        # Seconds of work for the worker: many chunks, each stretched 4x.
        speak(page, speech_text(34), speed=0.25)
        expect(page.locator("#first-audio")).to_have_attribute("data-ms", re.compile(r"\d"), timeout=WAIT_MS)
        api.process.kill()
        expect(page.get_by_role("alert")).to_contain_text("Speak: The audio stream broke off before the end")
        expect(page.locator("#result")).to_have_attribute("data-state", "failed")
        assert page.locator("#complete").get_attribute("data-ms") is None
    finally:
        api.stop()


def test_every_control_has_a_label_and_speaking_works_from_the_keyboard(page: Page) -> None:
    unlabelled = page.evaluate(
        """[...document.querySelectorAll("input, select, textarea")]
            .filter((control) => control.labels.length === 0 && !control.getAttribute("aria-label"))
            .map((control) => control.id)"""
    )
    assert unlabelled == []
    page.get_by_label("Text").fill(SENTENCE)
    page.get_by_label("Text").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "speak":
            break
    else:
        pytest.fail("Tab never reached the Speak button")
    page.keyboard.press("Enter")
    expect(page.locator("#result")).to_have_attribute("data-state", "done", timeout=WAIT_MS)
