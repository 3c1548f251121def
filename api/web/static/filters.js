/* The filter controls (class, minimum detector score, ingestion, number of results), shared by
 * the search and browse views. The URL is their only state: a change goes to the same view with
 * new parameters, and every view reads its filters back from the URL. The parameter names are
 * the API's (`classes`, `min_score`, `ingestions`, `k`), so the URL's query is the API's. */

import { api, ApiError } from "./api.js";
import { $, h } from "./dom.js";
import { showModel } from "./header.js";
import { showError } from "./messages.js";
import { parseHash, setParams } from "./router.js";

export const FILTER_KEYS = ["classes", "min_score", "ingestions"];
const DEFAULT_K = 24;
const MAX_K = 200;

/** The filters of `params` (URLSearchParams) as API query parameters; `withK` adds k. */
export function filterQuery(params, { withK = false } = {}) {
  const query = {};
  for (const key of FILTER_KEYS) {
    const value = params.get(key);
    if (value) query[key] = value;
  }
  if (withK) query.k = kOf(params);
  return query;
}

function kOf(params) {
  const k = Math.round(Number(params.get("k")));
  return Number.isFinite(k) && k >= 1 ? Math.min(k, MAX_K) : DEFAULT_K;
}

/** The current URL's filter parameters (k included when set), for links that keep them. */
export function currentFilters() {
  const { params } = parseHash();
  const out = filterQuery(params);
  if (params.get("k")) out.k = params.get("k");
  return out;
}

/** A stable key of the filters in `params`: a view re-runs its query when it changes. */
export function filterKey(params, { withK = false } = {}) {
  return JSON.stringify(filterQuery(params, { withK }));
}

function setSelect(select, value) {
  select.dataset.want = value; // options may arrive later (fillSelect applies it)
  if (value && ![...select.options].some((o) => o.value === value)) {
    select.append(h("option", { value }, value));
  }
  select.value = value;
}

/** Put the filter panel into `slot` and show the URL's filters in it. */
export function showFilters(slot, params, { withK = false } = {}) {
  const panel = $("#filters");
  if (panel.parentElement !== slot) slot.append(panel);
  $("#f-k-label").hidden = !withK;
  setSelect($("#f-class"), params.get("classes") || "");
  setSelect($("#f-ingestion"), params.get("ingestions") || "");
  const minScore = Number(params.get("min_score")) || 0;
  $("#f-min-score").value = String(minScore);
  $("#f-min-score-out").textContent = minScore.toFixed(2);
  $("#f-k").value = String(kOf(params));
}

function fillSelect(select, firstLabel, options) {
  const keep = select.dataset.want ?? select.value;
  select.replaceChildren(h("option", { value: "" }, firstLabel),
    ...options.map(([value, label]) => h("option", { value: String(value) }, label)));
  setSelect(select, keep);
}

export async function loadFilterOptions() {
  try {
    const model = await api("/v1/model");
    showModel(model);
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

/** The controls' values → the URL (the same view; a browse cursor starts over). */
function applyControls() {
  const { params } = parseHash();
  const next = new URLSearchParams(params);
  for (const key of [...FILTER_KEYS, "k", "after", "before"]) next.delete(key);
  const cls = $("#f-class").value;
  if (cls) next.set("classes", cls);
  const minScore = Number($("#f-min-score").value);
  if (minScore > 0) next.set("min_score", String(minScore));
  const ingestion = $("#f-ingestion").value;
  if (ingestion) next.set("ingestions", ingestion);
  if (!$("#f-k-label").hidden) {
    const k = Math.round(Number($("#f-k").value));
    if (Number.isFinite(k) && k >= 1 && k !== DEFAULT_K) next.set("k", String(Math.min(k, MAX_K)));
  }
  setParams(next);
}

export function initFilters() {
  // On a phone the panel starts folded: the grid is what one came for.
  if (window.matchMedia("(max-width: 600px)").matches) $("#filters").open = false;
  const out = $("#f-min-score-out");
  const range = $("#f-min-score");
  range.addEventListener("input", () => { out.textContent = Number(range.value).toFixed(2); });
  for (const el of ["#f-class", "#f-min-score", "#f-ingestion", "#f-k"]) {
    $(el).addEventListener("change", () => {
      if (el !== "#f-k") $(el).dataset.want = $(el).value;
      applyControls();
    });
  }
  $("#f-clear").addEventListener("click", () => {
    for (const el of ["#f-class", "#f-ingestion"]) {
      $(el).value = "";
      $(el).dataset.want = "";
    }
    $("#f-min-score").value = "0";
    applyControls();
  });
}
