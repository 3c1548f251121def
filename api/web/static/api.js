/* API client: every call adds the X-API-Key header (the key the user entered, kept in
 * localStorage) and turns the API's error body {"error": {"code", "message", "details"}} into an
 * ApiError. */

const KEY_STORAGE = "roisearch.apiKey";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const keyListeners = [];

export const apiKey = {
  get: () => localStorage.getItem(KEY_STORAGE) || "",
  set(value) {
    if (value) localStorage.setItem(KEY_STORAGE, value);
    else localStorage.removeItem(KEY_STORAGE);
    for (const listener of keyListeners) listener();
  },
  onChange(listener) {
    keyListeners.push(listener);
  },
};

function authHeaders() {
  const key = apiKey.get();
  return key ? { "X-API-Key": key } : {};
}

export function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(name, v);
  }
  return url.pathname + url.search;
}

/** The API's error body → ApiError; anything else (proxy page, empty body) → a plain one. */
function errorFromBody(status, statusText, text) {
  try {
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) {
      return new ApiError(status, body.error.code || `http_${status}`, body.error.message,
        body.error.details);
    }
  } catch (_) {
    /* not JSON: fall through */
  }
  const snippet = (text || "").replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 200);
  return new ApiError(status, `http_${status}`,
    `${status} ${statusText || "error"}${snippet ? `: ${snippet}` : ""}`);
}

export async function api(path, { method = "GET", query, json, form, signal, as = "json" } = {}) {
  const headers = { ...authHeaders() };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    response = await fetch(buildUrl(path, query), { method, headers, body, signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error",
      "cannot reach the server (is `roisearch serve` running?)");
  }
  if (!response.ok) {
    throw errorFromBody(response.status, response.statusText, await response.text());
  }
  if (as === "blob") return response.blob();
  if (as === "text") return response.text();
  return response.json();
}

/** multipart POST with upload progress (fetch cannot report it); resolves to the JSON body. */
export function upload(path, form, { query, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", buildUrl(path, query));
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable && onProgress) onProgress(ev.loaded / ev.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch (_) {
          reject(new ApiError(xhr.status, "bad_response", "the server sent an unreadable answer"));
        }
      } else {
        reject(errorFromBody(xhr.status, xhr.statusText, xhr.responseText));
      }
    };
    // A 413 sent before the body is read makes the server close the connection; browsers
    // then often report a network error instead of the response.
    xhr.onerror = () => reject(new ApiError(0, "upload_failed",
      "the upload was interrupted (the server refused it or is unreachable; "
      + "a file over the size limit is refused before it is read)"));
    xhr.send(form);
  });
}
