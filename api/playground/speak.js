// The speak form: one request to /v1/audio/speech at a time, played as its bytes arrive, timed from the click.

import { request } from "./api.js";
import { playerFor, streams } from "./player.js";
import { $, clearError, say, showError } from "./ui.js";

const PART = "Speak";
let current = null; // { controller, player } of the request under way

// `onFinished` runs after each request, whatever its outcome.
export function setUpSpeaking({ onFinished }) {
  for (const option of $("format").options) {
    option.textContent = `${option.value} (${streams(option.value) ? "streams" : "plays when complete"})`;
  }
  const showSpeed = () => say("speed-value", `${Number($("speed").value).toFixed(2)}×`);
  $("speed").addEventListener("input", showSpeed);
  showSpeed();
  $("speak-form").addEventListener("submit", (event) => {
    event.preventDefault();
    speak().then(onFinished);
  });
  $("stop").addEventListener("click", stop);
}

async function speak() {
  stop();
  clearError(PART);
  const format = $("format").value;
  const body = {
    model: $("model").value,
    voice: $("voice").value,
    input: $("text").value,
    speed: Number($("speed").value),
    response_format: format,
  };
  const run = { controller: new AbortController(), player: null };
  current = run;
  const live = () => current === run;
  clearResult();
  setState("requesting", "Sending the text…");
  $("stop").disabled = false;
  const started = performance.now();
  try {
    const response = await request("v1/audio/speech", { method: "POST", json: body, signal: run.controller.signal });
    const contentType = response.headers.get("Content-Type");
    say("job-id", response.headers.get("X-Job-Id") ?? "not given");
    $("player").hidden = true;
    const sampleRate = Number(response.headers.get("X-Sample-Rate")) || 24000;
    run.player = playerFor(format, sampleRate, $("player"));
    run.player.onStart = () => {
      if (!live()) return;
      showTime("first-audio", performance.now() - started);
      setState("playing", "Playing…");
    };
    setState("streaming", streams(format) ? "Receiving…" : `Receiving; ${format} plays once it is complete…`);
    const parts = [];
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await readMore(reader);
      if (done) break;
      parts.push(value);
      run.player.push(value);
    }
    showTime("complete", performance.now() - started);
    run.player.end();
    offerDownload(parts, contentType, format);
    const seconds = await run.player.finished;
    if (!live()) return;
    const played = $("played");
    played.dataset.seconds = String(seconds);
    played.textContent = `${seconds.toFixed(2)} s`;
    const stopped = run.controller.signal.aborted;
    setState(stopped ? "stopped" : "done", `${stopped ? "Stopped after" : "Played"} ${seconds.toFixed(2)} s of audio.`);
  } catch (error) {
    run.player?.stop();
    if (!live()) return;
    if (error.name === "AbortError") {
      setState("stopped", "Stopped.");
    } else {
      setState("failed", "The speech request failed.");
      showError(PART, error);
    }
  } finally {
    if (live()) {
      current = null;
      $("stop").disabled = true;
    }
  }
}

async function readMore(reader) {
  try {
    return await reader.read();
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new Error(`The audio stream broke off before the end (${error.message}).`);
  }
}

function stop() {
  if (current === null) return;
  current.controller.abort();
  current.player?.stop();
}

function setState(state, text) {
  $("result").dataset.state = state;
  say("speak-status", text);
}

function clearResult() {
  for (const id of ["job-id", "first-audio", "complete", "played"]) {
    const field = $(id);
    field.textContent = "–";
    delete field.dataset.ms;
    delete field.dataset.seconds;
  }
  const link = $("download");
  if (link.href) URL.revokeObjectURL(link.href);
  link.removeAttribute("href");
  link.hidden = true;
}

function showTime(id, ms) {
  $(id).dataset.ms = String(ms);
  say(id, `${Math.round(ms)} ms`);
}

function offerDownload(parts, contentType, format) {
  const blob = new Blob(parts, { type: contentType });
  const link = $("download");
  link.href = URL.createObjectURL(blob);
  link.download = `speech.${format}`;
  link.textContent = `Download speech.${format} (${(blob.size / 1024).toFixed(1)} KiB)`;
  link.hidden = false;
}
