/* roisearch web page: a single-page app over the HTTP API, native ES modules, no build step.
 *
 * Views (hash routes, filters in the query: `#/similar/5?classes=square&min_score=0.5`):
 * #/browse (the landing page when the collection has images), #/search, #/similar/{objectId},
 * #/image/{imageId}[/{objectId}], #/collection[/{ingestionId}], #/reports[/{reportId}].
 *
 * Modules: api.js (API client), media.js (images behind the key), messages.js (errors, key
 * dialog), router.js (URL state), filters.js (shared filter panel), one module per view
 * (browse, search, image, collection, reports), boxes.js/drawing.js (box overlay), hits.js
 * (result grid), keyboard.js, header.js (the model in use). */

import { initBrowseView, browse, chooseLanding } from "./browse.js";
import { collection, initCollectionView } from "./collection.js";
import { initFilters, loadFilterOptions } from "./filters.js";
import { imageView, initImageView } from "./image.js";
import { initKeyboard } from "./keyboard.js";
import { clearImageCache } from "./media.js";
import { initKeyDialog } from "./messages.js";
import { initReportsView, reports } from "./reports.js";
import { initRouter, registerView, route, setLanding } from "./router.js";
import { initSearchView, search, similar } from "./search.js";

function init() {
  initKeyDialog(() => {
    clearImageCache();
    loadFilterOptions();
    route();
  });
  initFilters();
  initSearchView();
  initBrowseView();
  initImageView();
  initCollectionView();
  initReportsView();
  initKeyboard();
  registerView("browse", browse);
  registerView("search", search);
  registerView("similar", similar);
  registerView("image", imageView);
  registerView("collection", collection);
  registerView("reports", reports);
  setLanding(chooseLanding);
  initRouter();
  route();
  loadFilterOptions();
  document.body.dataset.ready = "true";
}

init();
