/* Box overlay shared by the search and image views.
 *
 * Coordinates: boxes are {x1, y1, x2, y2} in original-image pixels after EXIF orientation, the
 * frame of the API (`frame` = {width, height}). The overlay is laid out in percent of that
 * frame, so it stays aligned with the displayed image at any scaling. */

import { h } from "./dom.js";

/** Place boxes over an image. Larger boxes go first so that smaller ones stay on top and
 * clickable. */
export function renderBoxes(overlay, frame, items, { onSelect } = {}) {
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
      style: boxStyle(box, frame),
      onkeydown: (ev) => {
        if ((ev.key === "Enter" || ev.key === " ") && onSelect) {
          ev.preventDefault();
          ev.stopPropagation();
          onSelect(index);
        }
      },
    }, h("span", { class: "label" }, item.label));
    overlay.append(el);
  }
}

export function boxStyle(box, frame) {
  return {
    left: `${(box.x1 / frame.width) * 100}%`,
    top: `${(box.y1 / frame.height) * 100}%`,
    width: `${((box.x2 - box.x1) / frame.width) * 100}%`,
    height: `${((box.y2 - box.y1) / frame.height) * 100}%`,
  };
}

/** Client coordinates → original-image pixels, clamped to the image. */
export function toImagePixels(overlay, frame, clientX, clientY) {
  const rect = overlay.getBoundingClientRect();
  const x = ((clientX - rect.left) / rect.width) * frame.width;
  const y = ((clientY - rect.top) / rect.height) * frame.height;
  return {
    x: Math.min(frame.width, Math.max(0, x)),
    y: Math.min(frame.height, Math.max(0, y)),
  };
}

export function dragBox(a, b) {
  return {
    x1: Math.min(a.x, b.x), y1: Math.min(a.y, b.y),
    x2: Math.max(a.x, b.x), y2: Math.max(a.y, b.y),
  };
}
