/* Search views: query by an uploaded image (#/search: its detections, a click on one or a drawn
 * box shows similar objects) and "more like this" from a stored object (#/similar/{id}).
 *
 * The uploaded file stays in memory (a file cannot live in a URL); everything else, the filters
 * included, comes from the URL. The query image is shown only on #/search, never beside the
 * results of another query. */

import { upload, api } from "./api.js";
import { renderBoxes } from "./boxes.js";
import { $, fmt, h, THUMB_SIZE } from "./dom.js";
import { initDrawing } from "./drawing.js";
import { currentFilters, filterKey, filterQuery, showFilters } from "./filters.js";
import { renderHits, revealResults, setResultsHead } from "./hits.js";
import { setImage } from "./media.js";
import { clearError, showError } from "./messages.js";
import { go, href, idArg, parseHash } from "./router.js";

const NO_HITS = "No similar object in the collection (with these filters).";

export const search = {
  file: null, // the query image (File)
  localUrl: null, // blob: URL of the file, for display and the query crop
  frame: null, // {width, height} from the API: the original-pixel frame
  detections: [], // QueryResult[] with source "detection"
  selected: null, // index into detections, or "drawn"
  drawn: null, // QueryResult of the drawn box
  lastKey: null, // the filters the shown detections were searched with
  seq: 0, // guards against out-of-order responses

  /** #/search: the uploaded image (if any) and the results of its selected query. */
  show(_args, params) {
    showFilters($("#search-filters"), params, { withK: true });
    $("#query-stage").hidden = !this.file;
    $("#dropzone").classList.toggle("compact", Boolean(this.file));
    const key = filterKey(params, { withK: true });
    if (this.file && key !== this.lastKey) {
      this.lastKey = key;
      this.refresh();
    } else {
      this.renderSelection();
    }
  },

  async setFile(file) {
    if (!file) return;
    if (this.localUrl) URL.revokeObjectURL(this.localUrl);
    this.file = file;
    this.localUrl = URL.createObjectURL(file);
    this.frame = null;
    this.detections = [];
    this.selected = null;
    this.drawn = null;
    this.lastKey = null;
    $("#query-overlay").replaceChildren();
    $("#query-img").src = this.localUrl;
    setResultsHead(h("p", { class: "hint" }, "Detecting objects…"));
    $("#results").replaceChildren();
    go(href("search", [], currentFilters()));
  },

  /** The results of the current selection, from memory (back from another view). */
  renderSelection() {
    if (!this.file) {
      setResultsHead(h("p", { class: "hint" }, "Results appear here. Drop an image, or ",
        h("a", { href: "#/browse" }, "browse the collection"), "."));
      $("#results").replaceChildren();
    } else if (this.selected === "drawn" && this.drawn) {
      this.showDrawn();
    } else if (typeof this.selected === "number" && this.detections[this.selected]) {
      this.select(this.selected);
    } else if (this.frame) {
      setResultsHead(h("p", { class: "hint" }, this.detections.length
        ? "Click a box on the image to see similar objects, or draw a new box."
        : "No object detected: draw a box around the region you are looking for."));
      $("#results").replaceChildren();
    }
  },

  query() {
    return filterQuery(parseHash().params, { withK: true });
  },

  /** POST /v1/search without boxes: the detected objects, each with its neighbours. */
  async detect() {
    const seq = ++this.seq;
    const form = new FormData();
    form.append("image", this.file, this.file.name || "query");
    setStatus("Searching…");
    clearError("Search failed");
    try {
      const result = await upload("/v1/search", form, { query: this.query() });
      if (seq !== this.seq) return;
      const before = typeof this.selected === "number" ? this.detections[this.selected] : null;
      this.frame = { width: result.width, height: result.height };
      this.detections = result.queries;
      // Keep the chosen object chosen: the same box in the new answer.
      if (before) {
        const same = this.detections.findIndex((q) => sameBox(q.box, before.box));
        this.selected = same >= 0 ? same : null;
      }
      setStatus(`${result.width}×${result.height} px · ${result.queries.length} object(s) detected`
        + (result.space_id === null ? " · the collection is empty for this model" : ""));
      this.drawBoxes();
      if (this.selected === "drawn" && this.drawn) await this.searchBox(this.drawn.box);
      else if (onSearch()) this.renderSelection();
    } catch (err) {
      if (seq !== this.seq) return;
      setStatus("");
      if (onSearch()) searchFailed(err);
    }
  },

  drawBoxes() {
    if (!this.frame) return;
    const items = this.detections.map((q, i) => ({
      box: q.box,
      label: `${q.class_name ?? "object"} ${fmt.score(q.detector_score)}`,
      className: this.selected === i ? "active" : (this.selected !== null ? "dim" : ""),
      dataset: { kind: "detection" },
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
    this.drawBoxes();
    setResultsHead(queryCrop(query.box, this.frame, this.localUrl),
      h("span", { class: "title" },
        `Similar to the ${query.class_name ?? "object"} (detector ${fmt.score(query.detector_score)})`),
      h("span", { class: "hint" }, `${query.hits.length} result(s)`));
    renderHits(query.hits, NO_HITS);
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
    renderHits(this.drawn.hits, NO_HITS);
    revealResults();
  },

  /** POST /v1/search with one box (original-image pixels). */
  async searchBox(box) {
    const seq = ++this.seq;
    this.selected = "drawn";
    this.drawn = { box, hits: [] };
    this.drawBoxes();
    const form = new FormData();
    form.append("image", this.file, this.file.name || "query");
    form.append("boxes", [box.x1, box.y1, box.x2, box.y2].map((v) => v.toFixed(1)).join(","));
    setResultsHead(h("p", { class: "hint" }, "Searching for the drawn box…"));
    clearError("Search failed");
    try {
      const result = await upload("/v1/search", form, { query: this.query() });
      if (seq !== this.seq) return;
      this.drawn = result.queries[0] || { box, hits: [] };
      if (onSearch()) this.showDrawn();
    } catch (err) {
      if (seq !== this.seq) return;
      if (onSearch()) searchFailed(err);
    }
  },

  /** Filters changed: run the current query again. */
  refresh() {
    if (this.selected === "drawn" && this.drawn) this.searchBox(this.drawn.box);
    else this.detect();
  },
};

/** #/similar/{objectId}: "more like this" from any stored object (GET /v1/objects/{id}/similar). */
export const similar = {
  section: "search",
  seq: 0,

  /** Leaving: an answer still on its way must not draw into another view. */
  stop() {
    this.seq++;
  },

  async show(args, params) {
    const objectId = idArg(args[0]);
    if (objectId === null) {
      go("#/search", { replace: true });
      return;
    }
    showFilters($("#search-filters"), params, { withK: true });
    // The uploaded image has nothing to do with these results.
    $("#query-stage").hidden = true;
    $("#dropzone").classList.remove("compact");
    const seq = ++this.seq;
    setResultsHead(h("p", { class: "hint" }, `Finding objects like #${objectId}…`));
    $("#results").replaceChildren();
    clearError("Search failed");
    try {
      const result = await api(`/v1/objects/${objectId}/similar`,
        { query: filterQuery(params, { withK: true }) });
      if (seq !== this.seq) return;
      const q = result.query;
      const thumb = h("img", { alt: `object ${q.id}` });
      setImage(thumb, `${q.crop_url}?size=${THUMB_SIZE}`, { quiet: true });
      setResultsHead(
        h("a", { href: href("image", [q.image_id, q.id]), title: "open its image" }, thumb),
        h("span", { class: "title" }, `More like ${q.class_name} #${q.id}`),
        h("span", { class: "hint" }, `detector ${fmt.score(q.detector_score)} · ${result.hits.length} result(s)`));
      renderHits(result.hits, NO_HITS);
    } catch (err) {
      if (seq !== this.seq) return;
      searchFailed(err);
    }
  },
};

/** A search answer is drawn only while #/search is shown (it is kept for when it is again). */
const onSearch = () => (parseHash().name || "search") === "search";

const sameBox = (a, b) => ["x1", "y1", "x2", "y2"].every((c) => Math.abs(a[c] - b[c]) < 0.5);

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

export function initSearchView() {
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

  initDrawing($("#query-overlay"), {
    frame: () => search.frame,
    onDraw: (box) => search.searchBox(box),
    onPick: (boxEl) => {
      if (boxEl.dataset.kind === "drawn") search.showDrawn();
      else search.select(Number(boxEl.dataset.index));
    },
  });
}
