/* #/collection[/{ingestionId}]: ingestions with live progress, counts by status (the reasons of
 * failed and skipped items one click away), delete with confirmation; upload to start one. */

import { api, ApiError, upload } from "./api.js";
import { $, fmt, h } from "./dom.js";
import { loadFilterOptions } from "./filters.js";
import { clearError, showError } from "./messages.js";
import { go, href, idArg } from "./router.js";

const POLL_ACTIVE_MS = 1500;
const POLL_IDLE_MS = 6000;
const ACTIVE_INGESTION = new Set(["planning", "running", "queued"]);

export const collection = {
  timer: null,
  selected: null,
  active: false,
  detailPage: 1,
  confirming: false,

  show(args) {
    this.active = true;
    const selected = idArg(args[0]);
    if (selected !== this.selected) {
      this.detailPage = 1;
      this.confirming = false;
    }
    this.selected = selected;
    if (selected === null) $("#ingestion-detail").hidden = true;
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
      const focused = pane.contains(document.activeElement) ? document.activeElement.id : null;
      pane.replaceChildren(...ingestionDetail(detail, this));
      if (focused) document.getElementById(focused)?.focus();
    } catch (err) {
      if (id !== this.selected) return;
      pane.hidden = true;
      showError(err, "Loading the ingestion failed");
      if (err instanceof ApiError && err.status === 404) this.selected = null;
    }
  },

  async remove(id) {
    try {
      const result = await api(`/v1/ingestions/${id}`, { method: "DELETE" });
      clearError("Deleting the ingestion failed");
      this.confirming = false;
      $("#ingest-status").textContent = `Ingestion #${id} deleted `
        + `(${fmt.int(result.deleted_images)} image(s), ${fmt.int(result.deleted_objects)} object(s)).`;
      loadFilterOptions();
      go("#/collection");
    } catch (err) {
      showError(err, "Deleting the ingestion failed");
    }
  },
};

/** Progress of the images: done and failed over the items that are images. Skipped members
 * (not images: labels, notes in an archive) are counted beside the bar, never drawn as failed. */
function progressBar(ing) {
  const c = ing.counts;
  const images = Math.max(ing.total_items - c.skipped, 1);
  const seg = (cls, n) => h("span", { class: cls, style: { width: `${(n / images) * 100}%` } });
  return h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0,
    "aria-valuemax": ing.total_items - c.skipped, "aria-valuenow": c.done + c.failed },
  seg("done", c.done), seg("failed", c.failed));
}

function ingestionCard(ing, selected) {
  const c = ing.counts;
  const processed = c.done + c.failed + c.skipped;
  const detailHref = href("collection", [ing.id]);
  // Failed and skipped counts open the ingestion's detail, which lists each item's reason.
  const countLink = (cls, text) => h("a", { class: `count ${cls}`, href: detailHref,
    title: "show the items and their reasons" }, text);
  return h("article", {
    class: `ingestion${selected ? " selected" : ""}`,
    dataset: { id: ing.id, status: ing.status },
    tabindex: 0,
    "data-nav-item": true,
    onclick: (ev) => { if (!ev.target.closest("a")) location.hash = detailHref; },
  },
  h("div", { class: "head" },
    h("a", { class: "source", href: detailHref, "data-open": true }, `#${ing.id} ${ing.source}`),
    h("span", { class: `badge ${ing.status}` }, ing.status),
    h("span", { class: "hint" }, ing.source_kind)),
  progressBar(ing),
  h("div", { class: "counts" },
    h("span", {}, `${fmt.int(processed)} / ${fmt.int(ing.total_items)} items`),
    h("span", {}, `done ${fmt.int(c.done)}`),
    c.failed ? countLink("failed-n", `failed ${fmt.int(c.failed)}`) : h("span", {}, "failed 0"),
    c.skipped ? countLink("skipped-n", `skipped ${fmt.int(c.skipped)} (not images)`) : null,
    c.pending ? h("span", {}, `pending ${fmt.int(c.pending)}`) : null,
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

function deleteControls(d, owner) {
  const active = ACTIVE_INGESTION.has(d.status);
  if (!owner.confirming) {
    return h("button", { type: "button", id: "ingestion-delete", class: "small ghost danger",
      disabled: active, title: active ? "wait until it has finished" : null,
      onclick: () => { owner.confirming = true; owner.loadDetail(); } }, "Delete…");
  }
  return h("span", { class: "confirm", role: "group", "aria-label": "confirm deletion" },
    h("span", { class: "warn" },
      `Delete ingestion #${d.id} with its ${fmt.int(d.counts.done)} image(s) and `
      + `${fmt.int(d.objects_found)} object(s)? This cannot be undone.`),
    h("button", { type: "button", id: "ingestion-delete-confirm", class: "small danger",
      onclick: () => owner.remove(d.id) }, "Delete"),
    h("button", { type: "button", id: "ingestion-delete-cancel", class: "small ghost",
      onclick: () => { owner.confirming = false; owner.loadDetail(); } }, "Cancel"));
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
      h("a", { href: href("browse", [], { ingestions: d.id }), class: "button small ghost" },
        "Browse its images"),
      h("a", { href: href("search", [], { ingestions: d.id }), class: "button small ghost" },
        "Search only this ingestion"),
      deleteControls(d, owner)),
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

export function initCollectionView() {
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
      go(href("collection", [ing.id]));
    } catch (err) {
      status.textContent = "Upload failed.";
      showError(err, "Upload failed");
    } finally {
      button.disabled = false;
      bar.hidden = true;
    }
  });
}
