/* URL state: every view and its filters live in the hash (`#/similar/5?classes=square`), so
 * back, forward, reload and a shared link reproduce the page.
 *
 * A view registers {show(args, params), stop()}; `route()` parses the hash and shows the view
 * whose name is its first segment. Views never keep a filter that is not in the URL. */

import { clearMessages } from "./messages.js";

const views = new Map();
// Views that belong to another view's tab (and share its messages).
const TAB_OF = { similar: "search", image: "browse" };
let current = null;
let landing = () => "search";

export function registerView(name, view) {
  views.set(name, view);
}

/** `choose()` resolves to the name of the view an empty address shows. */
export function setLanding(choose) {
  landing = choose;
}

/** The current address: {name, args (strings), params (URLSearchParams)}. */
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : "");
  const [name = "", ...args] = path.split("/").filter(Boolean);
  return { name, args, params };
}

/** `#/name/arg…?params`; `params` is an object or URLSearchParams, empty values dropped. */
export function href(name, args = [], params = {}) {
  const entries = params instanceof URLSearchParams ? [...params.entries()] : Object.entries(params);
  const query = new URLSearchParams();
  for (const [key, value] of entries) {
    if (value === undefined || value === null || value === "") continue;
    query.append(key, String(value));
  }
  const qs = query.toString();
  return `#/${[name, ...args].join("/")}${qs ? `?${qs}` : ""}`;
}

/** Go to `hash` (push, or `replace`); the same address shows its view again. */
export function go(hash, { replace = false } = {}) {
  if (location.hash === hash) {
    route();
  } else if (replace) {
    history.replaceState(history.state, "", hash);
    route();
  } else {
    location.hash = hash; // fires hashchange → route()
  }
}

/** Same view, other params (filters changed, next page). */
export function setParams(params, options) {
  const { name, args } = parseHash();
  go(href(name || "search", args, params), options);
}

export const idArg = (v) => (v && /^\d+$/.test(v) ? Number(v) : null);

function showSection(name) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  const tab = TAB_OF[name] || name;
  for (const a of document.querySelectorAll(".tabs a")) {
    a.classList.toggle("active", a.dataset.view === tab);
  }
}

export async function route() {
  let { name, args, params } = parseHash();
  if (!name) {
    name = await landing();
    if (parseHash().name) return; // the user went somewhere meanwhile
    history.replaceState(history.state, "", href(name));
  }
  if (!views.has(name)) name = "search";
  const tab = TAB_OF[name] || name;
  // Messages belong to the view they were raised in; a new view starts clean.
  if (current !== null && tab !== (TAB_OF[current] || current)) clearMessages();
  for (const [other, view] of views) if (other !== name && view.stop) view.stop();
  current = name;
  const view = views.get(name);
  showSection(view.section || name);
  view.show(args, params);
}

export function initRouter() {
  window.addEventListener("hashchange", route);
}
