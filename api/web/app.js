/* roisearch web page: a single-page app over the HTTP API, plain JavaScript, no build step.
 *
 * Views (hash routes): #/search, #/similar/{objectId}, #/image/{imageId}/{objectId},
 * #/collection, #/collection/{ingestionId}, #/reports, #/reports/{reportId}.
 *
 * Every API call goes through `api()` / `upload()`, which add the X-API-Key header (the key the
 * user entered, kept in localStorage) and turn the API's error body
 * {"error": {"code", "message", "details"}} into an ApiError that `showError()` displays.
 * Images (originals, crops) are fetched the same way and shown through blob: URLs, because an
 * <img src> request cannot carry the key header.
 *
 * Coordinates: boxes are [x1, y1, x2, y2] in original-image pixels after EXIF orientation, the
 * frame of the API (the search response's width/height). The overlay is laid out in percent of
 * that frame, so it stays aligned with the displayed image at any scaling.
 */
"use strict";

(() => {
  const KEY_STORAGE = "roisearch.apiKey";
  const THUMB_SIZE = 256;
  const POLL_ACTIVE_MS = 1500;
  const POLL_IDLE_MS = 6000;
  const MIN_DRAW_PX = 6; // screen pixels a drag must cover before it counts as drawing
  const ACTIVE_INGESTION = new Set(["planning", "running", "queued"]);
  const ACTIVE_REPORT = new Set(["queued", "running"]);

  const $ = (sel) => document.querySelector(sel);

  /** Build an element; children are nodes or strings (strings become text, never HTML). */
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") el.className = value;
      else if (name === "dataset") Object.assign(el.dataset, value);
      else if (name === "style") Object.assign(el.style, value);
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  const fmt = {
    score: (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(3)),
    pct: (v) => `${Math.round(v * 100)}%`,
    int: (v) => Number(v ?? 0).toLocaleString(),
    seconds(s) {
      if (s === null || s === undefined) return "–";
      if (s < 90) return `${Math.round(s)} s`;
      if (s < 5400) return `${Math.round(s / 60)} min`;
      return `${(s / 3600).toFixed(1)} h`;
    },
    time: (iso) => (iso ? new Date(iso).toLocaleString() : "–"),
  };

  // ---------------------------------------------------------------------------------------
  // API client
  // ---------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details;
    }
  }

  const apiKey = {
    get: () => localStorage.getItem(KEY_STORAGE) || "",
    set(value) {
      if (value) localStorage.setItem(KEY_STORAGE, value);
      else localStorage.removeItem(KEY_STORAGE);
      updateKeyButton();
    },
  };

  function authHeaders() {
    const key = apiKey.get();
    return key ? { "X-API-Key": key } : {};
  }

  function buildUrl(path, query) {
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

  async function api(path, { method = "GET", query, json, form, signal, as = "json" } = {}) {
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
  function upload(path, form, { query, onProgress } = {}) {
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

  // Images behind the API key: fetched with the header, shown through blob: URLs (LRU cache).
  const blobCache = new Map();
  const BLOB_CACHE_MAX = 400;

  function blobUrl(path) {
    let entry = blobCache.get(path);
    if (entry) {
      blobCache.delete(path); // re-insert: most recently used last
      blobCache.set(path, entry);
      return entry;
    }
    entry = api(path, { as: "blob" }).then((blob) => URL.createObjectURL(blob));
    entry.catch(() => blobCache.delete(path));
    blobCache.set(path, entry);
    while (blobCache.size > BLOB_CACHE_MAX) {
      const [oldest, promise] = blobCache.entries().next().value;
      blobCache.delete(oldest);
      promise.then((url) => URL.revokeObjectURL(url), () => {});
    }
    return entry;
  }

  /** Show `path` in `img`; on failure either report it, or (`quiet`, for thumbnails) put a
   * short placeholder with the reason in its place. */
  function setImage(img, path, { quiet = false } = {}) {
    img.classList.add("loading");
    return blobUrl(path).then(
      (url) => {
        img.src = url;
        img.classList.remove("loading");
      },
      (err) => {
        img.classList.remove("loading");
        if (!quiet) {
          showError(err, "Loading an image failed");
          return;
        }
        img.replaceWith(h("span", { class: "no-image", title: err.message },
          err instanceof ApiError ? `no crop (${err.code})` : "no crop"));
      },
    );
  }

  // ---------------------------------------------------------------------------------------
  // Messages and the API key dialog
  // ---------------------------------------------------------------------------------------

  const messages = $("#messages");

  /** Show an error visibly; one message per context, replaced when the same context fails again. */
  function showError(err, context = "Error") {
    if (err && err.name === "AbortError") return;
    // Every call fails the same way without a (right) key: one message, not one per call.
    if (err instanceof ApiError && err.status === 401) context = "API key needed";
    console.error(context, err);
    const code = err instanceof ApiError ? err.code : "client_error";
    const text = err && err.message ? err.message : String(err);
    for (const old of messages.querySelectorAll(".message")) {
      if (old.dataset.context === context) old.remove();
    }
    const message = h("div", { class: "message", dataset: { context, code } },
      h("div", { class: "text" },
        h("strong", {}, `${context}: `), text, " ",
        h("span", { class: "code" }, `(${code})`)),
      h("button", { type: "button", class: "small", "aria-label": "dismiss",
        onclick: () => message.remove() }, "×"));
    messages.append(message);
    if (err instanceof ApiError && err.status === 401) openKeyDialog(text);
  }

  function clearError(context) {
    for (const old of messages.querySelectorAll(".message")) {
      if (old.dataset.context === context) old.remove();
    }
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

  function initKeyDialog() {
    updateKeyButton();
    $("#key-button").addEventListener("click", () => openKeyDialog());
    $("#key-form").addEventListener("submit", () => {
      apiKey.set($("#key-input").value.trim());
      for (const old of messages.querySelectorAll('.message[data-code="unauthorized"]')) old.remove();
      blobCache.clear();
      loadFilterOptions();
      route();
    });
    $("#key-clear").addEventListener("click", () => {
      apiKey.set("");
      $("#key-input").value = "";
    });
  }

  // ---------------------------------------------------------------------------------------
  // Box overlay (shared by the search and image views)
  // ---------------------------------------------------------------------------------------

  /**
   * Place boxes over an image. `frame` = {width, height}: the original-image pixel frame of the
   * boxes. Larger boxes go first so that smaller ones stay on top and clickable.
   */
  function renderBoxes(overlay, frame, items, { onSelect } = {}) {
    overlay.replaceChildren();
    const order = items.map((item, index) => ({ item, index }));
    const area = (b) => (b.x2 - b.x1) * (b.y2 - b.y1);
    order.sort((a, b) => area(b.item.box) - area(a.item.box));
    for (const { item, index } of order) {
      const { box } = item;
      const el = h("div", {
        class: `box${item.className ? ` ${item.className}` : ""}${box.y1 / frame.height < 0.04 ? " top" : ""}`,
        role: "button",
        tabindex: 0,
        title: item.label,
        "aria-label": item.label,
        dataset: { index: String(index), ...(item.dataset || {}) },
        style: {
          left: `${(box.x1 / frame.width) * 100}%`,
          top: `${(box.y1 / frame.height) * 100}%`,
          width: `${((box.x2 - box.x1) / frame.width) * 100}%`,
          height: `${((box.y2 - box.y1) / frame.height) * 100}%`,
        },
        onkeydown: (ev) => {
          if ((ev.key === "Enter" || ev.key === " ") && onSelect) {
            ev.preventDefault();
            onSelect(index);
          }
        },
      }, h("span", { class: "label" }, item.label));
      overlay.append(el);
    }
  }

  /** Client coordinates → original-image pixels, clamped to the image. */
  function toImagePixels(overlay, frame, clientX, clientY) {
    const rect = overlay.getBoundingClientRect();
    const x = ((clientX - rect.left) / rect.width) * frame.width;
    const y = ((clientY - rect.top) / rect.height) * frame.height;
    return {
      x: Math.min(frame.width, Math.max(0, x)),
      y: Math.min(frame.height, Math.max(0, y)),
    };
  }

  // ---------------------------------------------------------------------------------------
  // Filters
  // ---------------------------------------------------------------------------------------

  function currentFilters() {
    const query = {};
    const cls = $("#f-class").value;
    if (cls) query.classes = cls;
    const minScore = Number($("#f-min-score").value);
    if (minScore > 0) query.min_score = minScore;
    const ingestion = $("#f-ingestion").value;
    if (ingestion) query.ingestions = ingestion;
    const k = Math.round(Number($("#f-k").value));
    query.k = Number.isFinite(k) && k >= 1 ? Math.min(k, 200) : 24;
    return query;
  }

  function fillSelect(select, firstLabel, options) {
    const keep = select.value;
    select.replaceChildren(h("option", { value: "" }, firstLabel),
      ...options.map(([value, label]) => h("option", { value: String(value) }, label)));
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  }

  async function loadFilterOptions() {
    try {
      const model = await api("/v1/model");
      const names = (model.class_names || []).map(String);
      fillSelect($("#f-class"), "any class", names.map((n) => [n, n]));
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) showError(err, "API key needed");
      // Otherwise (model not loadable yet) the class filter simply stays "any class".
    }
    try {
      const list = await api("/v1/ingestions", { query: { page_size: 200 } });
      fillSelect($("#f-ingestion"), "all ingestions",
        list.ingestions.map((i) => [i.id, `#${i.id} ${i.source}`]));
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) showError(err, "Loading ingestions failed");
    }
  }

  function initFilters() {
    const out = $("#f-min-score-out");
    const range = $("#f-min-score");
    range.addEventListener("input", () => { out.textContent = Number(range.value).toFixed(2); });
    for (const el of ["#f-class", "#f-min-score", "#f-ingestion", "#f-k"]) {
      $(el).addEventListener("change", () => search.refresh());
    }
  }

  // ---------------------------------------------------------------------------------------
  // Result grid
  // ---------------------------------------------------------------------------------------

  function hitCard(hit) {
    const img = h("img", { alt: `${hit.class_name} (object ${hit.object_id})` });
    setImage(img, `${hit.crop_url}?size=${THUMB_SIZE}`, { quiet: true });
    return h("article", { class: "hit", dataset: { objectId: hit.object_id } },
      h("a", { class: "thumb", href: `#/image/${hit.image_id}/${hit.object_id}`,
        title: "open the image with this object highlighted" }, img),
      h("div", { class: "meta" },
        h("span", { class: "cls" }, hit.class_name),
        h("span", { class: "sim" }, `similarity ${fmt.score(hit.score)}`),
        h("span", { class: "det" }, `detector ${fmt.score(hit.detector_score)}`)),
      h("div", { class: "actions" },
        h("a", { href: `#/similar/${hit.object_id}`, class: "button small more" }, "More like this"),
        h("a", { href: `#/image/${hit.image_id}/${hit.object_id}` }, `image ${hit.image_id}`)));
  }

  function renderHits(hits, emptyText) {
    const grid = $("#results");
    if (!hits.length) {
      grid.replaceChildren(h("p", { class: "empty" }, emptyText));
      return;
    }
    grid.replaceChildren(...hits.map(hitCard));
  }

  function setResultsHead(...children) {
    $("#results-head").replaceChildren(...children);
  }

  /** On one-column (phone) layouts the results are below the image: bring them into view. */
  function revealResults() {
    if (window.matchMedia("(max-width: 899px)").matches) {
      $("#results-head").scrollIntoView({ block: "start" });
    }
  }

  // ---------------------------------------------------------------------------------------
  // Search view
  // ---------------------------------------------------------------------------------------

  const search = {
    file: null, // the query image (File)
    localUrl: null, // blob: URL of the file, for display and the query crop
    frame: null, // {width, height} from the API: the original-pixel frame
    detections: [], // QueryResult[] with source "detection"
    selected: null, // index into detections, or "drawn"
    drawn: null, // QueryResult of the drawn box
    similarOf: null, // object id when showing "more like this"
    seq: 0, // guards against out-of-order responses

    async setFile(file) {
      if (!file) return;
      if (this.localUrl) URL.revokeObjectURL(this.localUrl);
      this.file = file;
      this.localUrl = URL.createObjectURL(file);
      this.frame = null;
      this.detections = [];
      this.selected = null;
      this.drawn = null;
      $("#query-overlay").replaceChildren();
      $("#query-img").src = this.localUrl;
      $("#query-stage").hidden = false;
      if (location.hash !== "#/search") history.pushState(null, "", "#/search");
      this.similarOf = null;
      showView("search");
      setResultsHead(h("p", { class: "hint" }, "Detecting objects…"));
      $("#results").replaceChildren();
      await this.detect();
    },

    /** POST /v1/search without boxes: the detected objects, each with its neighbours. */
    async detect() {
      const seq = ++this.seq;
      const form = new FormData();
      form.append("image", this.file, this.file.name || "query");
      setStatus("Searching…");
      clearError("Search failed");
      try {
        const result = await upload("/v1/search", form, { query: currentFilters() });
        if (seq !== this.seq) return;
        this.frame = { width: result.width, height: result.height };
        this.detections = result.queries;
        setStatus(`${result.width}×${result.height} px · ${result.queries.length} object(s) detected`
          + (result.space_id === null ? " · the collection is empty for this model" : ""));
        this.drawBoxes();
        if (this.selected === "drawn" && this.drawn) {
          await this.searchBox(this.drawn.box);
        } else if (typeof this.selected === "number" && this.detections[this.selected]) {
          this.select(this.selected);
        } else {
          setResultsHead(h("p", { class: "hint" }, this.detections.length
            ? "Click a box on the image to see similar objects, or draw a new box."
            : "No object detected: draw a box around the region you are looking for."));
          $("#results").replaceChildren();
        }
      } catch (err) {
        if (seq !== this.seq) return;
        setStatus("");
        searchFailed(err);
      }
    },

    drawBoxes() {
      if (!this.frame) return;
      const items = this.detections.map((q, i) => ({
        box: q.box,
        label: `${q.class_name ?? "object"} ${fmt.score(q.detector_score)}`,
        className: this.selected === i ? "active" : (this.selected !== null ? "dim" : ""),
        dataset: { kind: "detection" },
        i,
      }));
      if (this.drawn) {
        items.push({ box: this.drawn.box, label: "drawn box", className: "drawn",
          dataset: { kind: "drawn" } });
      }
      renderBoxes($("#query-overlay"), this.frame, items, {
        onSelect: (index) => (index < this.detections.length ? this.select(index) : this.showDrawn()),
      });
    },

    /** Show the neighbours of detection `index` (already in the search response). */
    select(index) {
      const query = this.detections[index];
      if (!query) return;
      this.selected = index;
      this.similarOf = null;
      if (location.hash !== "#/search") history.pushState(null, "", "#/search");
      this.drawBoxes();
      setResultsHead(queryCrop(query.box, this.frame, this.localUrl),
        h("span", { class: "title" },
          `Similar to the ${query.class_name ?? "object"} (detector ${fmt.score(query.detector_score)})`),
        h("span", { class: "hint" }, `${query.hits.length} result(s)`));
      renderHits(query.hits, "No similar object in the collection (with these filters).");
      revealResults();
    },

    showDrawn() {
      if (!this.drawn) return;
      this.selected = "drawn";
      this.drawBoxes();
      const { box } = this.drawn;
      setResultsHead(queryCrop(box, this.frame, this.localUrl),
        h("span", { class: "title" }, `Similar to the drawn box ${Math.round(box.x2 - box.x1)}×${Math.round(box.y2 - box.y1)} px`),
        h("span", { class: "hint" }, `${this.drawn.hits.length} result(s)`));
      renderHits(this.drawn.hits, "No similar object in the collection (with these filters).");
      revealResults();
    },

    /** POST /v1/search with one box (original-image pixels). */
    async searchBox(box) {
      const seq = ++this.seq;
      this.selected = "drawn";
      this.similarOf = null;
      this.drawn = { box, hits: [] };
      this.drawBoxes();
      const form = new FormData();
      form.append("image", this.file, this.file.name || "query");
      form.append("boxes", [box.x1, box.y1, box.x2, box.y2].map((v) => v.toFixed(1)).join(","));
      setResultsHead(h("p", { class: "hint" }, "Searching for the drawn box…"));
      clearError("Search failed");
      try {
        const result = await upload("/v1/search", form, { query: currentFilters() });
        if (seq !== this.seq) return;
        this.drawn = result.queries[0] || { box, hits: [] };
        this.showDrawn();
      } catch (err) {
        if (seq !== this.seq) return;
        searchFailed(err);
      }
    },

    /** GET /v1/objects/{id}/similar: "more like this" from any stored object. */
    async similar(objectId) {
      const seq = ++this.seq;
      this.similarOf = objectId;
      showView("search");
      setResultsHead(h("p", { class: "hint" }, `Finding objects like #${objectId}…`));
      clearError("Search failed");
      try {
        const result = await api(`/v1/objects/${objectId}/similar`, { query: currentFilters() });
        if (seq !== this.seq) return;
        const q = result.query;
        const thumb = h("img", { alt: `object ${q.id}` });
        setImage(thumb, `${q.crop_url}?size=${THUMB_SIZE}`, { quiet: true });
        setResultsHead(
          h("a", { href: `#/image/${q.image_id}/${q.id}`, title: "open its image" }, thumb),
          h("span", { class: "title" }, `More like ${q.class_name} #${q.id}`),
          h("span", { class: "hint" }, `detector ${fmt.score(q.detector_score)} · ${result.hits.length} result(s)`));
        renderHits(result.hits, "No similar object in the collection (with these filters).");
      } catch (err) {
        if (seq !== this.seq) return;
        searchFailed(err);
      }
    },

    /** Filters changed: run the current query again. */
    refresh() {
      if (this.similarOf !== null) this.similar(this.similarOf);
      else if (this.file && this.selected === "drawn" && this.drawn) this.searchBox(this.drawn.box);
      else if (this.file) this.detect();
    },
  };

  function searchFailed(err) {
    setResultsHead(h("p", { class: "hint" }, "The search failed; see the message above."));
    $("#results").replaceChildren();
    showError(err, "Search failed");
  }

  function setStatus(text) {
    $("#query-status").textContent = text;
  }

  /** The query region cut from the local file: a small canvas shown above the results. */
  function queryCrop(box, frame, url) {
    const canvas = h("canvas", { width: 56, height: 56, class: "query-crop",
      "aria-label": "query region" });
    const img = $("#query-img");
    if (!url || !img.naturalWidth || !frame) return canvas;
    // naturalWidth is in the displayed (EXIF-oriented) frame; the API frame may differ in scale
    // only if the browser ignored orientation, so scale each axis separately.
    const sx = img.naturalWidth / frame.width;
    const sy = img.naturalHeight / frame.height;
    const w = Math.max(1, (box.x2 - box.x1) * sx);
    const hgt = Math.max(1, (box.y2 - box.y1) * sy);
    const scale = Math.min(56 / w, 56 / hgt);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#0f1726";
    ctx.fillRect(0, 0, 56, 56);
    const dw = w * scale;
    const dh = hgt * scale;
    ctx.drawImage(img, box.x1 * sx, box.y1 * sy, w, hgt, (56 - dw) / 2, (56 - dh) / 2, dw, dh);
    return canvas;
  }

  function initSearchView() {
    const input = $("#query-file");
    const zone = $("#dropzone");
    input.addEventListener("change", () => {
      if (input.files && input.files[0]) search.setFile(input.files[0]);
      input.value = ""; // picking the same file again still fires "change"
    });
    zone.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        input.click();
      }
    });
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (ev) => {
        ev.preventDefault();
        zone.classList.add("over");
      });
    }
    for (const type of ["dragleave", "drop"]) {
      zone.addEventListener(type, () => zone.classList.remove("over"));
    }
    zone.addEventListener("drop", (ev) => {
      ev.preventDefault();
      const file = ev.dataTransfer && ev.dataTransfer.files[0];
      if (file) search.setFile(file);
    });
    // A file dropped anywhere else would make the browser navigate away from the page.
    window.addEventListener("dragover", (ev) => ev.preventDefault());
    window.addEventListener("drop", (ev) => ev.preventDefault());

    initDrawing();
  }

  /**
   * Pointer handling on the query overlay: a press and release without moving selects the box
   * under the pointer; a drag draws a new box (mouse, pen or finger) and searches for it.
   */
  function initDrawing() {
    const overlay = $("#query-overlay");
    let drag = null;

    overlay.addEventListener("pointerdown", (ev) => {
      if (!search.frame || ev.button !== 0) return;
      ev.preventDefault();
      overlay.setPointerCapture(ev.pointerId);
      const boxEl = ev.target.closest(".box");
      drag = {
        id: ev.pointerId,
        startX: ev.clientX,
        startY: ev.clientY,
        start: toImagePixels(overlay, search.frame, ev.clientX, ev.clientY),
        boxEl,
        drawing: false,
        rubber: null,
      };
    });

    overlay.addEventListener("pointermove", (ev) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const moved = Math.hypot(ev.clientX - drag.startX, ev.clientY - drag.startY);
      if (!drag.drawing && moved >= MIN_DRAW_PX) {
        drag.drawing = true;
        drag.rubber = h("div", { class: "box drawn rubber" }, h("span", { class: "label" }, "new box"));
        overlay.append(drag.rubber);
      }
      if (drag.drawing) {
        const box = dragBox(drag.start, toImagePixels(overlay, search.frame, ev.clientX, ev.clientY));
        const f = search.frame;
        Object.assign(drag.rubber.style, {
          left: `${(box.x1 / f.width) * 100}%`,
          top: `${(box.y1 / f.height) * 100}%`,
          width: `${((box.x2 - box.x1) / f.width) * 100}%`,
          height: `${((box.y2 - box.y1) / f.height) * 100}%`,
        });
      }
    });

    const finish = (ev, cancelled) => {
      if (!drag || ev.pointerId !== drag.id) return;
      const current = drag;
      drag = null;
      if (current.rubber) current.rubber.remove();
      if (cancelled) return;
      if (current.drawing) {
        const box = dragBox(current.start, toImagePixels(overlay, search.frame, ev.clientX, ev.clientY));
        if (box.x2 - box.x1 >= 2 && box.y2 - box.y1 >= 2) search.searchBox(box);
        return;
      }
      if (current.boxEl) {
        const index = Number(current.boxEl.dataset.index);
        if (current.boxEl.dataset.kind === "drawn") search.showDrawn();
        else search.select(index);
      }
    };
    overlay.addEventListener("pointerup", (ev) => finish(ev, false));
    overlay.addEventListener("pointercancel", (ev) => finish(ev, true));
  }

  function dragBox(a, b) {
    return {
      x1: Math.min(a.x, b.x), y1: Math.min(a.y, b.y),
      x2: Math.max(a.x, b.x), y2: Math.max(a.y, b.y),
    };
  }

  // ---------------------------------------------------------------------------------------
  // Image view: a stored image with one object highlighted
  // ---------------------------------------------------------------------------------------

  let imageSeq = 0;

  async function showImage(imageId, objectId) {
    const seq = ++imageSeq;
    const img = $("#image-img");
    const overlay = $("#image-overlay");
    img.removeAttribute("src");
    overlay.replaceChildren();
    $("#image-title").textContent = `Image ${imageId}`;
    $("#image-meta").textContent = "Loading…";
    try {
      const detail = await api(`/v1/images/${imageId}`);
      if (seq !== imageSeq) return;
      $("#image-title").textContent = `Image ${detail.id}`;
      $("#image-meta").textContent = `${detail.source} · ${detail.width}×${detail.height} px · `
        + `${detail.format} · ${detail.object_count} object(s)`;
      const frame = { width: detail.width, height: detail.height };
      const items = detail.objects.map((o) => ({
        box: o.box,
        label: `${o.class_name} ${fmt.score(o.detector_score)}`,
        className: o.id === objectId ? "active" : (objectId ? "dim" : ""),
        dataset: { objectId: String(o.id) },
      }));
      renderBoxes(overlay, frame, items, {
        onSelect: (index) => { location.hash = `#/similar/${detail.objects[index].id}`; },
      });
      for (const el of overlay.querySelectorAll(".box")) {
        el.addEventListener("click", () => { location.hash = `#/similar/${el.dataset.objectId}`; });
      }
      if (detail.file_url) {
        await setImage(img, detail.file_url);
      } else {
        $("#image-meta").textContent += " · the original file is not stored";
        if (detail.detections_url) await setImage(img, detail.detections_url);
      }
      const active = overlay.querySelector(".box.active");
      if (active) active.scrollIntoView({ block: "center", behavior: "smooth" });
    } catch (err) {
      if (seq !== imageSeq) return;
      $("#image-meta").textContent = "";
      showError(err, "Opening the image failed");
    }
  }

  // ---------------------------------------------------------------------------------------
  // Collection view: ingestions with live progress; upload to start one
  // ---------------------------------------------------------------------------------------

  const collection = {
    timer: null,
    selected: null,
    active: false,
    detailPage: 1,

    start(selected) {
      this.active = true;
      if (selected !== this.selected) this.detailPage = 1;
      this.selected = selected;
      this.poll();
    },

    stop() {
      this.active = false;
      clearTimeout(this.timer);
      this.timer = null;
    },

    async poll() {
      clearTimeout(this.timer);
      if (!this.active) return;
      let anyActive = false;
      try {
        const list = await api("/v1/ingestions", { query: { page_size: 50 } });
        if (!this.active) return;
        clearError("Loading ingestions failed");
        anyActive = list.ingestions.some((i) => ACTIVE_INGESTION.has(i.status));
        this.renderList(list);
        if (this.selected !== null) await this.loadDetail();
        $("#poll-state").textContent = anyActive ? "updating live" : "";
      } catch (err) {
        showError(err, "Loading ingestions failed");
        if (err instanceof ApiError && err.status === 401) return; // wait for a key
      }
      if (this.active) {
        this.timer = setTimeout(() => this.poll(), anyActive ? POLL_ACTIVE_MS : POLL_IDLE_MS);
      }
    },

    renderList(list) {
      const box = $("#ingestions");
      if (!list.ingestions.length) {
        box.replaceChildren(h("p", { class: "empty" }, "No ingestion yet: upload images or an archive above."));
        return;
      }
      box.replaceChildren(...list.ingestions.map((ing) => ingestionCard(ing, ing.id === this.selected)));
      if (list.page.total > list.ingestions.length) {
        box.append(h("p", { class: "hint" }, `Showing the newest ${list.ingestions.length} of ${list.page.total}.`));
      }
    },

    async loadDetail() {
      const id = this.selected;
      const pane = $("#ingestion-detail");
      try {
        const detail = await api(`/v1/ingestions/${id}`, {
          query: { page: this.detailPage, page_size: 50 },
        });
        if (id !== this.selected) return;
        clearError("Loading the ingestion failed");
        pane.hidden = false;
        pane.replaceChildren(...ingestionDetail(detail, this));
      } catch (err) {
        if (id !== this.selected) return;
        pane.hidden = true;
        showError(err, "Loading the ingestion failed");
        if (err instanceof ApiError && err.status === 404) this.selected = null;
      }
    },
  };

  function progressBar(ing) {
    const total = Math.max(ing.total_items, 1);
    const c = ing.counts;
    const seg = (cls, n) => h("span", { class: cls, style: { width: `${(n / total) * 100}%` } });
    return h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0,
      "aria-valuemax": ing.total_items, "aria-valuenow": c.done + c.failed + c.skipped },
    seg("done", c.done), seg("failed", c.failed), seg("skipped", c.skipped));
  }

  function ingestionCard(ing, selected) {
    const c = ing.counts;
    const processed = c.done + c.failed + c.skipped;
    return h("article", {
      class: `ingestion${selected ? " selected" : ""}`,
      dataset: { id: ing.id, status: ing.status },
      tabindex: 0,
      onclick: () => { location.hash = `#/collection/${ing.id}`; },
      onkeydown: (ev) => { if (ev.key === "Enter") location.hash = `#/collection/${ing.id}`; },
    },
    h("div", { class: "head" },
      h("span", { class: "source" }, `#${ing.id} ${ing.source}`),
      h("span", { class: `badge ${ing.status}` }, ing.status),
      h("span", { class: "hint" }, ing.source_kind)),
    progressBar(ing),
    h("div", { class: "counts" },
      h("span", {}, `${fmt.int(processed)} / ${fmt.int(ing.total_items)} items`),
      h("span", {}, `done ${fmt.int(c.done)}`),
      h("span", { class: c.failed ? "failed-n" : "" }, `failed ${fmt.int(c.failed)}`),
      c.skipped ? h("span", {}, `skipped ${fmt.int(c.skipped)}`) : null,
      h("span", {}, `pending ${fmt.int(c.pending)}`),
      h("span", {}, `${fmt.int(ing.objects_found)} objects`),
      ing.images_per_s !== null ? h("span", {}, `${ing.images_per_s.toFixed(1)} img/s`) : null,
      ing.eta_s !== null ? h("span", {}, `ETA ${fmt.seconds(ing.eta_s)}`) : null),
    ing.error_message
      ? h("div", { class: "warn" }, `${ing.error_code}: ${ing.error_message}`)
      : null);
  }

  // One table per kind of unfinished item: failed (something went wrong, red codes) and
  // skipped (members that are not images: expected in an archive, grey codes). Attempts only
  // mean something for failures.
  function itemsSection(kind, title, items, page) {
    if (!page.total) return null;
    const failed = kind === "failed";
    const rows = items.map((it) => h("tr", {},
      h("td", {}, it.member),
      h("td", { class: "code" }, it.error_code || "–"),
      h("td", {}, it.error_message || ""),
      failed ? h("td", { "data-label": "attempts" }, String(it.attempts)) : null));
    return h("div", { class: `items-section ${kind}` },
      h("h3", {}, `${title} (${fmt.int(page.total)})`),
      rows.length
        ? h("table", { class: `items ${kind}` },
          h("thead", {}, h("tr", {}, h("th", {}, "item"), h("th", {}, "code"),
            h("th", {}, "reason"), failed ? h("th", {}, "attempts") : null)),
          h("tbody", {}, rows))
        : h("p", { class: "hint" }, "None on this page."));
  }

  function ingestionDetail(d, owner) {
    // The API pages both lists with the same page/page_size: one pager for both, as long as
    // the longer one.
    const pageCount = (p) => Math.max(1, Math.ceil(p.total / p.page_size));
    const pages = Math.max(pageCount(d.failed_page), pageCount(d.skipped_page));
    const page = d.failed_page.page;
    const goto = (to) => { owner.detailPage = to; owner.loadDetail(); };
    return [
      h("div", { class: "row wrap" },
        h("h3", {}, `Ingestion #${d.id}: ${d.source}`),
        h("span", { class: `badge ${d.status}` }, d.status)),
      h("p", { class: "hint" },
        `created ${fmt.time(d.created_at)} · started ${fmt.time(d.started_at)} · `
        + `finished ${fmt.time(d.finished_at)}`),
      h("div", { class: "row wrap" },
        h("a", { href: "#/search", class: "button small ghost",
          onclick: () => { $("#f-ingestion").value = String(d.id); } }, "Search only this ingestion")),
      d.failed_page.total || d.skipped_page.total
        ? h("div", { class: "items-lists" },
          itemsSection("failed", "Failed items", d.failed_items, d.failed_page),
          itemsSection("skipped", "Skipped (not images)", d.skipped_items, d.skipped_page))
        : h("p", { class: "hint" }, "No failed or skipped items."),
      pages > 1
        ? h("div", { class: "row" },
          h("button", { type: "button", class: "small ghost", disabled: page <= 1,
            onclick: () => goto(page - 1) }, "‹ previous"),
          h("span", { class: "hint" }, `page ${page} of ${pages}`),
          h("button", { type: "button", class: "small ghost", disabled: page >= pages,
            onclick: () => goto(page + 1) }, "next ›"))
        : null,
    ].filter(Boolean); // replaceChildren() would print a null
  }

  function initCollectionView() {
    const form = $("#ingest-form");
    const input = $("#ingest-file");
    const bar = $("#ingest-progress");
    const status = $("#ingest-status");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const files = [...(input.files || [])];
      if (!files.length) {
        showError(new ApiError(0, "no_file", "choose an image or an archive first"), "Upload failed");
        return;
      }
      const data = new FormData();
      for (const file of files) data.append("files", file, file.name);
      const button = $("#ingest-submit");
      button.disabled = true;
      bar.hidden = false;
      bar.value = 0;
      status.textContent = `Uploading ${files.length} file(s)…`;
      clearError("Upload failed");
      try {
        const ing = await upload("/v1/ingestions", data, {
          onProgress: (f) => {
            bar.value = f;
            status.textContent = f < 1 ? `Uploading… ${fmt.pct(f)}` : "Planning the items…";
          },
        });
        status.textContent = `Ingestion #${ing.id} started (${ing.total_items} item(s)).`;
        input.value = "";
        loadFilterOptions();
        location.hash = `#/collection/${ing.id}`;
        collection.start(ing.id);
      } catch (err) {
        status.textContent = "Upload failed.";
        showError(err, "Upload failed");
      } finally {
        button.disabled = false;
        bar.hidden = true;
      }
    });
  }

  // ---------------------------------------------------------------------------------------
  // Reports view
  // ---------------------------------------------------------------------------------------

  const reports = {
    active: false,
    timer: null,
    opened: null,
    html: null,

    start(openId) {
      this.active = true;
      this.poll();
      if (openId !== null && openId !== this.opened) this.open(openId);
      if (openId === null) {
        this.opened = null;
        $("#report-view").hidden = true;
      }
    },

    stop() {
      this.active = false;
      clearTimeout(this.timer);
    },

    async poll() {
      clearTimeout(this.timer);
      if (!this.active) return;
      let anyActive = false;
      try {
        const body = await api("/v1/reports", { query: { page_size: 100 } });
        if (!this.active) return;
        clearError("Loading reports failed");
        const list = Array.isArray(body) ? body : (body.reports || body.items || []);
        anyActive = list.some((r) => ACTIVE_REPORT.has(r.status));
        renderReports(list, this.opened);
      } catch (err) {
        showError(err, "Loading reports failed");
        if (err instanceof ApiError && err.status === 401) return;
      }
      if (this.active && anyActive) this.timer = setTimeout(() => this.poll(), POLL_ACTIVE_MS);
    },

    /** The report page is fetched with the key and shown in a sandboxed frame (no access to
     * this page, its storage or the key). */
    async open(id) {
      this.opened = id;
      const view = $("#report-view");
      $("#report-title").textContent = `Report ${id}`;
      view.hidden = false;
      try {
        const html = await api(`/v1/reports/${id}/html`, { as: "text" });
        if (this.opened !== id) return;
        this.html = html;
        $("#report-frame").srcdoc = html;
        clearError("Opening the report failed");
      } catch (err) {
        if (this.opened !== id) return;
        view.hidden = true;
        showError(err, "Opening the report failed");
      }
    },

    openInTab() {
      if (!this.html) return;
      // The tab gets a wrapper whose only content is the same sandboxed frame.
      const wrapper = document.implementation.createHTMLDocument(`roisearch report ${this.opened}`);
      const style = wrapper.createElement("style");
      style.textContent = "html,body{margin:0;height:100%}iframe{border:0;width:100%;height:100%}";
      const frame = wrapper.createElement("iframe");
      frame.setAttribute("sandbox", "allow-scripts");
      frame.setAttribute("srcdoc", this.html);
      wrapper.head.append(style);
      wrapper.body.append(frame);
      const blob = new Blob([`<!doctype html>${wrapper.documentElement.outerHTML}`],
        { type: "text/html" });
      const url = URL.createObjectURL(blob);
      window.open(url, "_blank", "noopener");
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    },

    async create() {
      const button = $("#report-new");
      button.disabled = true;
      try {
        const report = await api("/v1/reports/clusters", { method: "POST", json: {} });
        clearError("Starting a report failed");
        this.poll();
        if (report && report.id && report.status === "done") location.hash = `#/reports/${report.id}`;
      } catch (err) {
        showError(err, "Starting a report failed");
      } finally {
        button.disabled = false;
      }
    },
  };

  function renderReports(list, openedId) {
    const box = $("#reports");
    if (!list.length) {
      box.replaceChildren(h("p", { class: "empty" },
        "No report yet: start one with the button above or `roisearch report`."));
      return;
    }
    box.replaceChildren(...list.map((r) => {
      const done = r.status === "done";
      const summary = r.result && typeof r.result === "object"
        ? [r.result.n_clusters !== undefined ? `${r.result.n_clusters} clusters` : null,
          r.result.n_objects !== undefined ? `${fmt.int(r.result.n_objects)} objects` : null]
          .filter(Boolean).join(" · ")
        : "";
      return h("article", { class: `report${r.id === openedId ? " selected" : ""}`, dataset: { id: r.id } },
        h("span", { class: "grow" },
          h("strong", {}, `#${r.id} ${r.kind || "report"}`), " ",
          h("span", { class: `badge ${r.status}` }, r.status), " ",
          h("span", { class: "hint" }, [fmt.time(r.created_at), summary,
            ACTIVE_REPORT.has(r.status) && typeof r.progress === "number" ? fmt.pct(r.progress) : ""]
            .filter(Boolean).join(" · ")),
          r.error_message ? h("div", { class: "warn" }, `${r.error_code || "error"}: ${r.error_message}`) : null),
        done ? h("a", { href: `#/reports/${r.id}`, class: "button small" }, "Open") : null);
    }));
  }

  function initReportsView() {
    $("#report-open").addEventListener("click", () => reports.openInTab());
    $("#report-new").addEventListener("click", () => reports.create());
  }

  // ---------------------------------------------------------------------------------------
  // Router
  // ---------------------------------------------------------------------------------------

  function showView(name) {
    for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
    const tab = name === "image" ? "search" : name;
    for (const a of document.querySelectorAll(".tabs a")) a.classList.toggle("active", a.dataset.view === tab);
  }

  let currentView = null;

  function route() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
    const [name, a, b] = parts;
    const id = (v) => (v && /^\d+$/.test(v) ? Number(v) : null);
    // Messages belong to the view they were raised in; a new view starts clean.
    const view = name === "similar" || name === "image" ? "search" : name || "search";
    if (view !== currentView) messages.replaceChildren();
    currentView = view;
    if (name !== "collection") collection.stop();
    if (name !== "reports") reports.stop();
    switch (name) {
      case "collection":
        showView("collection");
        collection.start(id(a));
        break;
      case "reports":
        showView("reports");
        reports.start(id(a));
        break;
      case "similar":
        if (id(a) !== null) {
          search.similar(id(a));
          break;
        }
      // falls through
      case "image":
        if (name === "image" && id(a) !== null) {
          showView("image");
          showImage(id(a), id(b));
          break;
        }
      // falls through
      default:
        showView("search");
    }
  }

  function init() {
    initKeyDialog();
    initFilters();
    initSearchView();
    initCollectionView();
    initReportsView();
    window.addEventListener("hashchange", route);
    route();
    loadFilterOptions();
    document.body.dataset.ready = "true";
  }

  init();
})();
