/* Keyboard: arrow keys move through a grid of cards ([data-nav-item] inside [data-keynav]),
 * Enter opens the focused card (its [data-open] link), Escape goes back. */

const TYPING = new Set(["INPUT", "SELECT", "TEXTAREA"]);

function items(grid) {
  return [...grid.querySelectorAll("[data-nav-item]")].filter((el) => el.offsetParent !== null);
}

/** The item in the row above/below `from` whose centre is nearest horizontally. */
function vertical(list, from, down) {
  const r = from.getBoundingClientRect();
  const cx = r.left + r.width / 2;
  const rows = list.filter((el) => {
    const o = el.getBoundingClientRect();
    return down ? o.top >= r.bottom - 2 : o.bottom <= r.top + 2;
  });
  if (!rows.length) return null;
  const rowTop = down ? Math.min(...rows.map((el) => el.getBoundingClientRect().top))
    : Math.max(...rows.map((el) => el.getBoundingClientRect().top));
  const row = rows.filter((el) => Math.abs(el.getBoundingClientRect().top - rowTop) < 4);
  return row.reduce((best, el) => {
    const o = el.getBoundingClientRect();
    const d = Math.abs(o.left + o.width / 2 - cx);
    return best === null || d < best.d ? { el, d } : best;
  }, null).el;
}

function onKey(ev) {
  if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const target = ev.target;
  if (TYPING.has(target.tagName) || document.querySelector("dialog[open]")) return;
  if (ev.key === "Escape") {
    if (history.length > 1) history.back();
    return;
  }
  const grid = target.closest ? target.closest("[data-keynav]") : null;
  const item = target.closest ? target.closest("[data-nav-item]") : null;
  if (ev.key === "Enter" && item && item === target) {
    const open = item.matches("a") ? item : item.querySelector("[data-open]");
    if (open) {
      ev.preventDefault();
      open.click();
    }
    return;
  }
  if (!["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(ev.key)) return;
  let list;
  let from = item;
  if (grid && item) {
    list = items(grid);
  } else {
    // Focus outside a grid: arrows enter the first grid on screen.
    const first = [...document.querySelectorAll("[data-keynav]")].find((g) => g.offsetParent !== null);
    if (!first || TYPING.has(target.tagName) || target.closest(".overlay")) return;
    list = items(first);
    if (!list.length) return;
    ev.preventDefault();
    list[0].focus();
    return;
  }
  const i = list.indexOf(from);
  let next = null;
  if (ev.key === "ArrowLeft") next = list[i - 1];
  else if (ev.key === "ArrowRight") next = list[i + 1];
  else next = vertical(list, from, ev.key === "ArrowDown");
  if (next) {
    ev.preventDefault();
    next.focus();
    next.scrollIntoView({ block: "nearest" });
  }
}

export function initKeyboard() {
  document.addEventListener("keydown", onKey);
}
