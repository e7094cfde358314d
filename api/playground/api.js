// Calls to the service. Every request carries the key the user entered (kept in this browser's storage only);
// every failure becomes an ApiError whose message says in words what went wrong.

const KEY_STORAGE = "chatterbox-tts.api-key";

export function storedKey() {
  return localStorage.getItem(KEY_STORAGE) ?? "";
}

export function storeKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(message, { status = null, param = null, code = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.param = param;
    this.code = code;
  }
}

// Paths are relative to the page (served at <api>/playground/), so the page also works behind a path prefix.
export function apiUrl(path) {
  return new URL(`../${path}`, document.baseURI);
}

export async function request(path, { method = "GET", json, body, signal } = {}) {
  const headers = {};
  const key = storedKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(apiUrl(path), { method, headers, body, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(`Could not reach the service (${error.message}). Is it running?`);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function getJson(path) {
  return (await request(path)).json();
}

export async function sendJson(path, method, json) {
  return (await request(path, { method, json })).json();
}

async function errorOf(response) {
  let error = null;
  try {
    error = (await response.json()).error;
  } catch {
    // Not the service's JSON (a proxy's page, say): fall back to the status line below.
  }
  if (!error?.message) {
    return new ApiError(`The service answered ${response.status} ${response.statusText} without saying why.`, {
      status: response.status,
    });
  }
  let message = error.message;
  if (error.param) message += ` (parameter: ${error.param})`;
  if (response.status === 401) message += " Enter a valid API key above.";
  const retryAfter = response.headers.get("Retry-After");
  if (retryAfter) message += ` Try again in ${retryAfter} s.`;
  return new ApiError(message, { status: response.status, param: error.param, code: error.code });
}
