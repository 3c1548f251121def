/* Pointer handling on a box overlay: a press and release without moving picks the box under the
 * pointer; a drag draws a new box (mouse, pen or finger: pointer events, `touch-action: none`). */

import { boxStyle, dragBox, toImagePixels } from "./boxes.js";
import { h } from "./dom.js";

const MIN_DRAW_PX = 6; // screen pixels a drag must cover before it counts as drawing

/** `frame()` gives the current original-pixel frame (null: no image yet); `onDraw(box)` gets a
 * drawn box in original pixels, `onPick(boxEl)` the box element clicked. */
export function initDrawing(overlay, { frame, onDraw, onPick }) {
  let drag = null;

  overlay.addEventListener("pointerdown", (ev) => {
    if (!frame() || ev.button !== 0) return;
    ev.preventDefault();
    overlay.setPointerCapture(ev.pointerId);
    drag = {
      id: ev.pointerId,
      startX: ev.clientX,
      startY: ev.clientY,
      start: toImagePixels(overlay, frame(), ev.clientX, ev.clientY),
      boxEl: ev.target.closest(".box"),
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
      const box = dragBox(drag.start, toImagePixels(overlay, frame(), ev.clientX, ev.clientY));
      Object.assign(drag.rubber.style, boxStyle(box, frame()));
    }
  });

  const finish = (ev, cancelled) => {
    if (!drag || ev.pointerId !== drag.id) return;
    const current = drag;
    drag = null;
    if (current.rubber) current.rubber.remove();
    if (cancelled) return;
    if (current.drawing) {
      const box = dragBox(current.start, toImagePixels(overlay, frame(), ev.clientX, ev.clientY));
      if (box.x2 - box.x1 >= 2 && box.y2 - box.y1 >= 2) onDraw(box);
      return;
    }
    if (current.boxEl) onPick(current.boxEl);
  };
  overlay.addEventListener("pointerup", (ev) => finish(ev, false));
  overlay.addEventListener("pointercancel", (ev) => finish(ev, true));
}
