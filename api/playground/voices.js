// The voice registry: the speak form's voice list and the table with enable, disable and delete.

import { getJson, request, sendJson } from "./api.js";
import { $, clearError, say, showError } from "./ui.js";

const PART = "Voices";

export function setUpVoices() {
  $("refresh-voices").addEventListener("click", () => loadVoices());
  $("voices-table").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) act(button.dataset.action, button.dataset.voice, button.dataset.enabled === "true");
  });
}

// Loads the voices into the select and the table, and resolves with the error if it failed. `select` names a
// voice to pick, `focus` an action button to give the focus back to once the table has been drawn again.
export async function loadVoices({ select = null, focus = null } = {}) {
  try {
    const voices = (await getJson("v1/audio/voices")).data;
    clearError(PART);
    fillSelect(voices, select);
    fillTable(voices);
    if (focus) $("voices-table").querySelector(`button[data-action="${focus.action}"][data-voice="${CSS.escape(focus.voice)}"]`)?.focus();
    return null;
  } catch (error) {
    showError(PART, error);
    return error;
  }
}

function fillSelect(voices, select) {
  const element = $("voice");
  const wanted = select ?? element.value;
  element.replaceChildren(
    ...voices.map((voice) => {
      const option = new Option(voice.enabled ? voice.name : `${voice.name} (disabled)`, voice.name);
      option.disabled = !voice.enabled;
      return option;
    }),
  );
  const keep = voices.find((voice) => voice.name === wanted && voice.enabled);
  if (keep) element.value = keep.name;
}

function fillTable(voices) {
  $("voices-table").tBodies[0].replaceChildren(...voices.map(row));
}

function row(voice) {
  const tr = document.createElement("tr");
  const name = cell(voice.name);
  // Another part of the service may mark the default voices; show the mark where the list carries it.
  if (voice.built_in) name.append(" ", badge("built in"));
  const state = [voice.enabled ? "enabled" : "disabled"];
  if (voice.has_reference_audio === false) state.push("no reference clip");
  const actions = document.createElement("td");
  actions.append(
    button(voice.enabled ? "Disable" : "Enable", voice, "toggle"),
    " ",
    button("Delete", voice, "delete"),
  );
  tr.append(name, cell(voice.description ?? ""), cell(state.join(", ")), actions);
  return tr;
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function badge(text) {
  const span = document.createElement("span");
  span.className = "badge";
  span.textContent = text;
  return span;
}

function button(label, voice, action) {
  const element = document.createElement("button");
  element.type = "button";
  element.textContent = label;
  element.setAttribute("aria-label", `${label} ${voice.name}`);
  element.dataset.action = action;
  element.dataset.voice = voice.name;
  element.dataset.enabled = String(voice.enabled);
  return element;
}

async function act(action, name, enabled) {
  const path = `v1/audio/voices/${encodeURIComponent(name)}`;
  try {
    if (action === "toggle") {
      await sendJson(path, "PATCH", { enabled: !enabled });
      say("voices-status", `${enabled ? "Disabled" : "Enabled"} ${name}.`);
    } else {
      if (!window.confirm(`Delete the voice ${name}? Its reference clip is deleted too.`)) return;
      await request(path, { method: "DELETE" });
      say("voices-status", `Deleted ${name}.`);
    }
  } catch (error) {
    showError(PART, error);
    return;
  }
  await loadVoices({ focus: action === "toggle" ? { action, voice: name } : null });
  if (action === "delete") $("refresh-voices").focus();
}
