// Small helpers every part of the page shares: finding elements, status lines and the announced error list.

export function $(id) {
  return document.getElementById(id);
}

// Errors go to one role="alert" region, one line per part of the page, so a screen reader announces each as it
// comes and a later success in that part clears its line.
export function showError(part, error) {
  const line = errorLine(part) ?? document.createElement("p");
  line.dataset.part = part;
  line.textContent = `${part}: ${error.message}`;
  $("errors").append(line);
}

export function clearError(part) {
  errorLine(part)?.remove();
}

function errorLine(part) {
  return [...$("errors").children].find((line) => line.dataset.part === part);
}

export function say(id, text) {
  $(id).textContent = text;
}
