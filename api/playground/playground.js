// The page's entry point: the API key, the first loads, and a refresh of the queue every few seconds.

import { getJson, storedKey, storeKey } from "./api.js";
import { loadHealth, setUpHealth } from "./health.js";
import { setUpSpeaking } from "./speak.js";
import { $, clearError, say, showError } from "./ui.js";
import { setUpUpload } from "./upload.js";
import { loadVoices, setUpVoices } from "./voices.js";

const HEALTH_REFRESH_MS = 5000;

async function loadModels() {
  try {
    const models = (await getJson("v1/models")).data;
    const select = $("model");
    const wanted = select.value;
    select.replaceChildren(...models.map((model) => new Option(model.id, model.id)));
    if (models.some((model) => model.id === wanted)) select.value = wanted;
    clearError("Models");
    return null;
  } catch (error) {
    showError("Models", error);
    return error;
  }
}

// Resolves with the errors of the loads that failed.
async function loadAll() {
  return (await Promise.all([loadModels(), loadVoices(), loadHealth()])).filter((error) => error !== null);
}

const refused = (errors) => errors.some((error) => error.status === 401);

function setUpKey() {
  const input = $("api-key");
  input.value = storedKey();
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    storeKey(input.value.trim());
    say("key-status", storedKey() ? "Key saved in this browser; connecting…" : "No key: requests go without one.");
    const errors = await loadAll();
    if (errors.length === 0) say("key-status", "Connected.");
    else if (refused(errors)) say("key-status", "The service refused this key.");
  });
  $("forget-key").addEventListener("click", () => {
    storeKey("");
    input.value = "";
    say("key-status", "Key forgotten.");
  });
}

setUpKey();
setUpSpeaking({ onFinished: () => loadHealth({ quiet: true }) });
setUpVoices();
setUpUpload();
setUpHealth();
if (refused(await loadAll())) $("api-key").focus();
setInterval(() => {
  if (document.visibilityState === "visible") loadHealth({ quiet: true });
}, HEALTH_REFRESH_MS);
