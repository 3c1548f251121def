/* #/browse: the collection as a paged grid of images (thumbnail with its boxes drawn, object
 * count, source) or of object crops (`mode=objects`), with the same filters as the searches.
 * An image opens the image view; an object its similar objects.
 *
 * Paging is keyset paging (`after` / `before` an id, the API's `next` / `prev` cursors), kept
 * in the URL like the filters: a deep page costs what the first one does, and reload, back and a
 * shared link show the same page. */

import { api } from "./api.js";
import { $, fmt, h, THUMB_SIZE } from "./dom.js";
import { currentFilters, filterQuery, showFilters } from "./filters.js";
import { setImage } from "./media.js";
import { clearError, showError } from "./messages.js";
import { href, parseHash, setParams } from "./router.js";

const PAGE_SIZE = 48;
const IMAGE_THUMB = 320;

/** The landing view: browse when the collection has images, search otherwise. */
export async function chooseLanding() {
  try {
    const list = await api("/v1/images", { query: { page_size: 1 } });
    return list.images.length ? "browse" : "search";
  } catch (_) {
    return "search"; // no key yet, server starting: the search page explains itself
  }
}

export const browse = {
  seq: 0,
  totals: new Map(), // listing key → total of its first page (keyset pages do not count)

  async show(_args, params) {
    showFilters($("#browse-filters"), params);
    const objects = params.get("mode") === "objects";
    for (const button of document.querySelectorAll("#browse-mode button")) {
      const on = button.dataset.mode === (objects ? "objects" : "images");
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", String(on));
    }
    const seq = ++this.seq;
    const size = Math.min(Math.max(Math.round(Number(params.get("size"))) || PAGE_SIZE, 1), 200);
    const filters = filterQuery(params);
    const listingKey = JSON.stringify([objects, filters]);
    const query = { ...filters, page_size: size };
    for (const key of ["after", "before"]) if (params.get(key)) query[key] = params.get(key);
    const grid = $("#browse-grid");
    grid.setAttribute("aria-busy", "true");
    clearError("Browsing failed");
    try {
      const body = await api(objects ? "/v1/objects" : "/v1/images", { query });
      if (seq !== this.seq) return;
      const items = objects ? body.objects : body.images;
      const noun = objects ? "object" : "image";
      if (body.page.total !== null) this.totals.set(listingKey, body.page.total);
      const total = this.totals.get(listingKey);
      const filtered = Object.keys(filters).length > 0;
      $("#browse-count").textContent = total === undefined ? ""
        : `${fmt.int(total)} ${noun}(s) ${filtered ? "match the filters" : "in the collection"}`;
      grid.replaceChildren(...(items.length
        ? items.map(objects ? objectCard : imageCard)
        : [h("p", { class: "empty" }, filtered
          ? `No ${noun} matches these filters.` : `No ${noun} here.`)]));
      renderPager(body, params);
    } catch (err) {
      if (seq !== this.seq) return;
      grid.replaceChildren();
      showError(err, "Browsing failed");
    } finally {
      if (seq === this.seq) grid.removeAttribute("aria-busy");
    }
  },
};

/** Source without its folders ("street/0001.jpg" → "0001.jpg"); the whole one in the tooltip. */
function shortSource(source) {
  const parts = String(source || "").split(/[/\\]/);
  return parts[parts.length - 1] || String(source || "");
}

function imageCard(image) {
  const img = h("img", { alt: `image ${image.id}`, loading: "lazy" });
  if (image.detections_url) {
    setImage(img, `${image.detections_url}?max_side=${IMAGE_THUMB}`, { quiet: true });
  }
  const link = href("image", [image.id]);
  return h("article", { class: "tile image-tile", tabindex: 0, "data-nav-item": true,
    dataset: { imageId: image.id } },
  h("a", { class: "thumb", href: link, tabindex: -1, "data-open": true }, img),
  h("div", { class: "meta" },
    h("span", { class: "count" }, `${fmt.int(image.object_count)} object(s)`),
    h("span", { class: "source", title: image.source }, shortSource(image.source))));
}

function objectCard(obj) {
  const img = h("img", { alt: `${obj.class_name} (object ${obj.id})`, loading: "lazy" });
  setImage(img, `${obj.crop_url}?size=${THUMB_SIZE}`, { quiet: true });
  return h("article", { class: "tile object-tile", tabindex: 0, "data-nav-item": true,
    dataset: { objectId: obj.id } },
  h("a", { class: "thumb", href: href("similar", [obj.id], currentFilters()), tabindex: -1,
    "data-open": true, title: "similar objects" }, img),
  h("div", { class: "meta" },
    h("span", { class: "cls" }, obj.class_name),
    h("span", { class: "det" }, `detector ${fmt.score(obj.detector_score)}`),
    h("a", { href: href("image", [obj.image_id, obj.id]), tabindex: -1 }, `image ${obj.image_id}`)));
}

function renderPager(body, params) {
  const page = (cursor) => {
    const next = new URLSearchParams(params);
    next.delete("after");
    next.delete("before");
    for (const [key, value] of Object.entries(cursor)) next.set(key, String(value));
    return next;
  };
  const onFirst = !params.get("after") && !params.get("before");
  const button = (id, label, disabled, cursor) => h("button", {
    type: "button", id, class: "small ghost", disabled,
    onclick: () => { setParams(page(cursor)); window.scrollTo(0, 0); },
  }, label);
  $("#browse-pager").replaceChildren(
    button("browse-first", "« First", onFirst && body.prev === null, {}),
    button("browse-prev", "‹ Previous", body.prev === null, { before: body.prev }),
    button("browse-next", "Next ›", body.next === null, { after: body.next }));
}

export function initBrowseView() {
  for (const button of document.querySelectorAll("#browse-mode button")) {
    button.addEventListener("click", () => {
      const { params } = parseHash();
      const next = new URLSearchParams(params);
      next.delete("after");
      next.delete("before");
      if (button.dataset.mode === "objects") next.set("mode", "objects");
      else next.delete("mode");
      setParams(next);
    });
  }
}
