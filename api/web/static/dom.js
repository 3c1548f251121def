/* DOM helpers and number/time formatting shared by every view. */

export const THUMB_SIZE = 256;

export const $ = (sel) => document.querySelector(sel);

/** Build an element; children are nodes or strings (strings become text, never HTML). */
export function h(tag, attrs = {}, ...children) {
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

export const fmt = {
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
