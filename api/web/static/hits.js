/* The result grid of the search views: one card per hit (crop, class, scores, links). */

import { $, fmt, h, THUMB_SIZE } from "./dom.js";
import { currentFilters } from "./filters.js";
import { setImage } from "./media.js";
import { href } from "./router.js";

export function hitCard(hit) {
  const img = h("img", { alt: `${hit.class_name} (object ${hit.object_id})` });
  setImage(img, `${hit.crop_url}?size=${THUMB_SIZE}`, { quiet: true });
  const imageLink = href("image", [hit.image_id, hit.object_id]);
  return h("article", { class: "hit", dataset: { objectId: hit.object_id }, tabindex: 0,
    "data-nav-item": true },
  h("a", { class: "thumb", href: imageLink, tabindex: -1,
    title: "open the image with this object highlighted" }, img),
  h("div", { class: "meta" },
    h("span", { class: "cls" }, hit.class_name),
    h("span", { class: "sim" }, `similarity ${fmt.score(hit.score)}`),
    h("span", { class: "det" }, `detector ${fmt.score(hit.detector_score)}`)),
  h("div", { class: "actions" },
    h("a", { href: href("similar", [hit.object_id], currentFilters()), class: "button small more",
      "data-open": true }, "More like this"),
    h("a", { href: imageLink }, `image ${hit.image_id}`)));
}

export function renderHits(hits, emptyText) {
  const grid = $("#results");
  if (!hits.length) {
    grid.replaceChildren(h("p", { class: "empty" }, emptyText));
    return;
  }
  grid.replaceChildren(...hits.map(hitCard));
}

export function setResultsHead(...children) {
  $("#results-head").replaceChildren(...children);
}

/** On one-column (phone) layouts the results are below the image: bring them into view. */
export function revealResults() {
  if (window.matchMedia("(max-width: 899px)").matches) {
    $("#results-head").scrollIntoView({ block: "start" });
  }
}
