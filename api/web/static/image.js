/* #/image/{imageId}[/{objectId}]: a stored image with all its objects (boxes and crops), one of
 * them highlighted; a click on an object shows its similar objects. */

import { api } from "./api.js";
import { renderBoxes } from "./boxes.js";
import { $, fmt, h, THUMB_SIZE } from "./dom.js";
import { setImage } from "./media.js";
import { showError } from "./messages.js";
import { href, idArg } from "./router.js";

export const imageView = {
  seq: 0,

  async show(args) {
    const imageId = idArg(args[0]);
    const objectId = idArg(args[1]);
    const seq = ++this.seq;
    const img = $("#image-img");
    const overlay = $("#image-overlay");
    img.removeAttribute("src");
    overlay.replaceChildren();
    $("#image-objects").replaceChildren();
    $("#image-title").textContent = `Image ${imageId ?? "?"}`;
    $("#image-meta").textContent = "Loading…";
    try {
      if (imageId === null) throw new Error(`not an image id: ${args[0] ?? "(none)"}`);
      const detail = await api(`/v1/images/${imageId}`);
      if (seq !== this.seq) return;
      $("#image-title").textContent = `Image ${detail.id}`;
      $("#image-meta").textContent = `${detail.source} · ${detail.width}×${detail.height} px · `
        + `${detail.format} · ${detail.object_count} object(s)`;
      const frame = { width: detail.width, height: detail.height };
      img.style.setProperty("--ar", String(detail.width / detail.height));
      const items = detail.objects.map((o) => ({
        box: o.box,
        label: `${o.class_name} ${fmt.score(o.detector_score)}`,
        className: o.id === objectId ? "active" : (objectId ? "dim" : ""),
        dataset: { objectId: String(o.id) },
      }));
      const open = (id) => { location.hash = href("similar", [id]); };
      renderBoxes(overlay, frame, items, { onSelect: (index) => open(detail.objects[index].id) });
      for (const el of overlay.querySelectorAll(".box")) {
        el.addEventListener("click", () => open(el.dataset.objectId));
      }
      $("#image-objects").replaceChildren(...detail.objects.map((o) => objectChip(o, objectId)));
      if (detail.file_url) {
        await setImage(img, detail.file_url);
      } else {
        $("#image-meta").textContent += " · the original file is not stored";
        if (detail.detections_url) await setImage(img, detail.detections_url);
      }
      const active = overlay.querySelector(".box.active");
      if (active) active.scrollIntoView({ block: "center", behavior: "smooth" });
    } catch (err) {
      if (seq !== this.seq) return;
      $("#image-meta").textContent = "";
      showError(err, "Opening the image failed");
    }
  },
};

function objectChip(o, activeId) {
  const img = h("img", { alt: `${o.class_name} (object ${o.id})` });
  setImage(img, `${o.crop_url}?size=${THUMB_SIZE / 2}`, { quiet: true });
  return h("a", {
    class: `chip${o.id === activeId ? " active" : ""}`, href: href("similar", [o.id]),
    "data-nav-item": true, dataset: { objectId: o.id }, title: "similar objects",
  }, img, h("span", {}, `${o.class_name} ${fmt.score(o.detector_score)}`));
}

export function initImageView() {
  // Back where the image was opened from; a shared link has nowhere to go back to.
  $("#image-back").addEventListener("click", () => {
    if (history.length > 1) history.back();
    else location.hash = "#/browse";
  });
}
