// A new voice from a reference clip: a file, or a recording from the microphone where the browser allows it.

import { request } from "./api.js";
import { recordingUnavailable, startRecording } from "./recorder.js";
import { $, clearError, say, showError } from "./ui.js";
import { loadVoices } from "./voices.js";

const PART = "New voice";
let recorded = null; // the last recording, used while no file is chosen after it
let stopRecording = null;

export function setUpUpload() {
  $("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    upload();
  });
  $("voice-file").addEventListener("change", () => forgetRecording());
  const unavailable = recordingUnavailable();
  if (unavailable) {
    $("record").disabled = true;
    say("recording-status", unavailable);
    return;
  }
  $("record").addEventListener("click", record);
  $("stop-recording").addEventListener("click", finishRecording);
}

async function record() {
  clearError(PART);
  try {
    stopRecording = await startRecording();
  } catch (error) {
    showError(PART, new Error(`Could not use the microphone: ${error.message}`));
    return;
  }
  $("record").disabled = true;
  $("stop-recording").disabled = false;
  $("stop-recording").focus();
  say("recording-status", "Recording…");
}

async function finishRecording() {
  const stop = stopRecording;
  stopRecording = null;
  $("stop-recording").disabled = true;
  $("record").disabled = false;
  try {
    recorded = await stop();
  } catch (error) {
    showError(PART, error);
    say("recording-status", "");
    return;
  }
  $("voice-file").value = "";
  const preview = $("recording");
  preview.src = URL.createObjectURL(recorded);
  preview.hidden = false;
  say("recording-status", `Recorded ${(recorded.size / 1024).toFixed(1)} KiB; it is the clip that Add voice sends.`);
  $("record").focus();
}

function forgetRecording() {
  recorded = null;
  const preview = $("recording");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.removeAttribute("src");
  preview.hidden = true;
  say("recording-status", "");
}

async function upload() {
  clearError(PART);
  const clip = $("voice-file").files[0] ?? recorded;
  if (!clip) {
    showError(PART, new Error("Choose a clip file or record one first."));
    return;
  }
  const name = $("voice-name").value.trim();
  const form = new FormData();
  form.append("name", name);
  const description = $("voice-description").value.trim();
  if (description) form.append("description", description);
  form.append("file", clip, clip.name);
  say("upload-status", `Uploading ${clip.name}…`);
  try {
    await request("v1/audio/voices", { method: "POST", body: form });
  } catch (error) {
    say("upload-status", "");
    showError(PART, error);
    return;
  }
  say("upload-status", `Added the voice ${name}; it is selected for speaking.`);
  $("upload-form").reset();
  forgetRecording();
  await loadVoices({ select: name });
}
