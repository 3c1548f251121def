/* Images behind the API key: fetched with the header and shown through blob: URLs, because an
 * <img src> request cannot carry the key. A small LRU cache keeps them. */

import { api, ApiError } from "./api.js";
import { h } from "./dom.js";
import { showError } from "./messages.js";

const blobCache = new Map();
const BLOB_CACHE_MAX = 400;

export function clearImageCache() {
  blobCache.clear();
}

function blobUrl(path) {
  let entry = blobCache.get(path);
  if (entry) {
    blobCache.delete(path); // re-insert: most recently used last
    blobCache.set(path, entry);
    return entry;
  }
  entry = api(path, { as: "blob" }).then((blob) => URL.createObjectURL(blob));
  entry.catch(() => blobCache.delete(path));
  blobCache.set(path, entry);
  while (blobCache.size > BLOB_CACHE_MAX) {
    const [oldest, promise] = blobCache.entries().next().value;
    blobCache.delete(oldest);
    promise.then((url) => URL.revokeObjectURL(url), () => {});
  }
  return entry;
}

/** Show `path` in `img`; on failure either report it, or (`quiet`, for thumbnails) put a
 * short placeholder with the reason in its place. */
export function setImage(img, path, { quiet = false } = {}) {
  img.classList.add("loading");
  return blobUrl(path).then(
    (url) => {
      img.src = url;
      img.classList.remove("loading");
    },
    (err) => {
      img.classList.remove("loading");
      if (!quiet) {
        showError(err, "Loading an image failed");
        return;
      }
      img.replaceWith(h("span", { class: "no-image", title: err.message },
        err instanceof ApiError ? `no crop (${err.code})` : "no crop"));
    },
  );
}
