/* #/reports[/{reportId}]: clustering reports told apart (selection, objects and clusters,
 * method, when and how long; a failed one shows its error); start one (it opens when done);
 * open one inside the page or in a new tab. */

import { api, ApiError } from "./api.js";
import { $, fmt, h } from "./dom.js";
import { clearError, showError } from "./messages.js";
import { filterQuery, showFilters } from "./filters.js";
import { go, href, idArg, parseHash } from "./router.js";

const POLL_ACTIVE_MS = 1500;
const ACTIVE_REPORT = new Set(["queued", "running"]);
const METHOD_NAMES = { kmeans: "k-means", density: "density" };

export const reports = {
  active: false,
  timer: null,
  opened: null,
  html: null,
  waitingFor: null, // a report started from this page: opened once it is done

  show(args, params) {
    this.active = true;
    showFilters($("#report-filters"), params);
    const openId = idArg(args[0]);
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
      const list = body.reports || [];
      anyActive = list.some((r) => ACTIVE_REPORT.has(r.status));
      renderReports(list, this.opened);
      const waited = list.find((r) => r.id === this.waitingFor);
      if (waited && !ACTIVE_REPORT.has(waited.status)) {
        this.waitingFor = null;
        if (waited.status === "done") go(href("reports", [waited.id]));
        else showError(new ApiError(0, waited.error_code || "report_failed",
          `report #${waited.id} failed: ${waited.error_message || "no reason given"}`), "The report failed");
      }
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
    $("#report-title").textContent = `Report #${id}`;
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

  /** POST /v1/reports/clusters with the form's selection and method. */
  async create(ev) {
    ev.preventDefault();
    const button = $("#report-submit");
    const body = { method: $("#r-method").value, per_class: $("#r-per-class").checked };
    // The selection is the filter panel's, i.e. the URL's (the API's query names).
    const sel = filterQuery(parseHash().params);
    if (sel.classes) body.classes = sel.classes.split(",");
    if (sel.ingestions) body.ingestions = sel.ingestions.split(",").map(Number);
    if (sel.min_score) body.min_score = Number(sel.min_score);
    const k = Math.round(Number($("#r-k").value));
    if ($("#r-k").value && Number.isFinite(k) && k >= 2) body.k = k;
    button.disabled = true;
    try {
      const report = await api("/v1/reports/clusters", { method: "POST", json: body });
      clearError("Starting a report failed");
      $("#report-form").hidden = true;
      if (report.status === "done") go(href("reports", [report.id]));
      else this.waitingFor = report.id;
      this.poll();
    } catch (err) {
      showError(err, "Starting a report failed");
    } finally {
      button.disabled = false;
    }
  },
};

/** "classes car, person · ingestions #2 · detector ≥ 0.5", or "all objects". */
function selectionText(sel) {
  const parts = [];
  if (sel.classes && sel.classes.length) parts.push(`classes ${sel.classes.join(", ")}`);
  if (sel.ingestions && sel.ingestions.length) {
    parts.push(`ingestion${sel.ingestions.length > 1 ? "s" : ""} ${sel.ingestions.map((i) => `#${i}`).join(", ")}`);
  }
  if (sel.min_score) parts.push(`detector ≥ ${sel.min_score}`);
  return parts.length ? parts.join(" · ") : "all objects";
}

/** "k-means per class, k=4", "k-means, auto k", "density". */
function methodText(s) {
  const k = s.method !== "kmeans" ? "" : (s.k_requested ? `, k=${s.k_requested}` : ", auto k");
  return `${METHOD_NAMES[s.method] || s.method}${s.per_class ? " per class" : ""}${k}`;
}

function reportCard(r, openedId) {
  const s = r.summary || {};
  const done = r.status === "done";
  const active = ACTIVE_REPORT.has(r.status);
  const facts = [
    s.method ? methodText(s) : null,
    s.objects !== null && s.objects !== undefined ? `${fmt.int(s.objects)} objects` : null,
    s.clusters !== null && s.clusters !== undefined ? `${fmt.int(s.clusters)} clusters` : null,
    active && typeof r.progress === "number" ? fmt.pct(r.progress) : null,
  ].filter(Boolean);
  const when = [`created ${fmt.time(r.created_at)}`,
    s.duration_s !== null && s.duration_s !== undefined ? `took ${fmt.seconds(s.duration_s)}` : null]
    .filter(Boolean).join(" · ");
  return h("article", {
    class: `report${r.id === openedId ? " selected" : ""}`, dataset: { id: r.id, status: r.status },
    tabindex: 0, "data-nav-item": true,
  },
  h("div", { class: "grow" },
    h("div", { class: "row wrap" },
      h("strong", {}, `#${r.id}`),
      h("span", { class: "selection" }, selectionText(s.selection || {})),
      h("span", { class: `badge ${r.status}` }, r.status)),
    h("div", { class: "facts" }, facts.join(" · ")),
    h("div", { class: "hint" }, when),
    r.error_message
      ? h("div", { class: "warn error" }, `${r.error_code || "error"}: ${r.error_message}`)
      : null),
  done ? h("a", { href: href("reports", [r.id]), class: "button small", "data-open": true }, "Open") : null);
}

function renderReports(list, openedId) {
  const box = $("#reports");
  if (!list.length) {
    box.replaceChildren(h("p", { class: "empty" },
      "No report yet: start one with the button above or `roisearch report clusters`."));
    return;
  }
  box.replaceChildren(...list.map((r) => reportCard(r, openedId)));
}

export function initReportsView() {
  $("#report-open").addEventListener("click", () => reports.openInTab());
  $("#report-new").addEventListener("click", () => {
    $("#report-form").hidden = !$("#report-form").hidden;
  });
  $("#report-form").addEventListener("submit", (ev) => reports.create(ev));
}
