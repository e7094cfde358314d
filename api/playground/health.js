// The queue and workers as /health reports them (Runpod's shape).

import { getJson } from "./api.js";
import { $, clearError, say, showError } from "./ui.js";

const PART = "Queue";
const FIELDS = {
  "health-in-queue": (health) => health.jobs.inQueue,
  "health-in-progress": (health) => health.jobs.inProgress,
  "health-completed": (health) => health.jobs.completed,
  "health-failed": (health) => health.jobs.failed,
  "health-retried": (health) => health.jobs.retried,
  "health-idle": (health) => health.workers.idle,
  "health-running": (health) => health.workers.running,
};

export function setUpHealth() {
  $("refresh-health").addEventListener("click", () => loadHealth());
}

// Resolves with the error if it failed. A refresh the user did not ask for (`quiet`) leaves the error list alone:
// it would repeat the same line every few seconds.
export async function loadHealth({ quiet = false } = {}) {
  try {
    const health = await getJson("health");
    for (const [id, value] of Object.entries(FIELDS)) say(id, String(value(health)));
    clearError(PART);
    return null;
  } catch (error) {
    if (!quiet) showError(PART, error);
    return error;
  }
}
