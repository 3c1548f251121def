/* Visible error messages under the top bar, and the API key dialog. */

import { ApiError, apiKey } from "./api.js";
import { $, h } from "./dom.js";

const messages = () => $("#messages");

/** Show an error visibly; one message per context, replaced when the same context fails again. */
export function showError(err, context = "Error") {
  if (err && err.name === "AbortError") return;
  // Every call fails the same way without a (right) key: one message, not one per call.
  if (err instanceof ApiError && err.status === 401) context = "API key needed";
  console.error(context, err);
  const code = err instanceof ApiError ? err.code : "client_error";
  const text = err && err.message ? err.message : String(err);
  clearError(context);
  const message = h("div", { class: "message", dataset: { context, code } },
    h("div", { class: "text" },
      h("strong", {}, `${context}: `), text, " ",
      h("span", { class: "code" }, `(${code})`)),
    h("button", { type: "button", class: "small", "aria-label": "dismiss",
      onclick: () => message.remove() }, "×"));
  messages().append(message);
  if (err instanceof ApiError && err.status === 401) openKeyDialog(text);
}

export function clearError(context) {
  for (const old of messages().querySelectorAll(".message")) {
    if (old.dataset.context === context) old.remove();
  }
}

export function clearMessages() {
  messages().replaceChildren();
}

function updateKeyButton() {
  const button = $("#key-button");
  const has = Boolean(apiKey.get());
  button.classList.toggle("has-key", has);
  button.textContent = has ? "API key ✓" : "API key";
}

function openKeyDialog(reason) {
  const dialog = $("#key-dialog");
  const reasonEl = $("#key-reason");
  reasonEl.hidden = !reason;
  reasonEl.textContent = reason || "";
  $("#key-input").value = apiKey.get();
  if (!dialog.open) dialog.showModal();
}

/** `onSave` runs after a key was saved: reload what failed without it. */
export function initKeyDialog(onSave) {
  updateKeyButton();
  apiKey.onChange(updateKeyButton);
  $("#key-button").addEventListener("click", () => openKeyDialog());
  $("#key-form").addEventListener("submit", () => {
    apiKey.set($("#key-input").value.trim());
    for (const old of messages().querySelectorAll('.message[data-code="unauthorized"]')) old.remove();
    onSave();
  });
  $("#key-clear").addEventListener("click", () => {
    apiKey.set("");
    $("#key-input").value = "";
  });
}
