"""Search filters: from :class:`SearchFilter` to a candidate mask and a FAISS id selector.

A filter is applied *inside* the FAISS search (an ``IDSelector``), never by searching k and
dropping non-matching hits afterwards, so a selective filter still yields k results when k
matching objects exist. How each index type stays exact-k is decided in
:mod:`shared.index.space_index` (IVF widens ``nprobe``, HNSW widens ``efSearch``, both fall back
to an exact scan of the matching objects when the approximate pass comes back short).
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from shared.index.metadata import ObjectTable
from shared.index.search_filter import SearchFilter

# Below this fraction of the id range, a hash-set selector over the matching ids is cheaper
# than a bitmap over the whole range.
BATCH_SELECTOR_FRACTION = 1 / 64


def allowed_images(flt: SearchFilter, ingestion_images: np.ndarray | None) -> np.ndarray | None:
    """The image ids a filter allows (int64, sorted), or None when images are unrestricted.

    ``ingestion_images`` are the image ids of ``flt.ingestion_ids`` as read from the database.
    """
    allowed: np.ndarray | None = None
    if flt.image_ids is not None:
        allowed = np.unique(np.asarray(flt.image_ids, np.int64))
    if flt.ingestion_ids is not None:
        linked = np.unique(
            np.asarray(ingestion_images if ingestion_images is not None else [], np.int64)
        )
        allowed = linked if allowed is None else np.intersect1d(allowed, linked)
    return allowed


def candidate_mask(
    table: ObjectTable, flt: SearchFilter | None, images: np.ndarray | None
) -> np.ndarray:
    """Bool ``[table.capacity]``: live objects that pass ``flt`` (``images`` from
    :func:`allowed_images`)."""
    c = table.columns
    mask = c["live"].copy()
    if flt is None:
        return mask
    if flt.class_ids is not None:
        mask &= np.isin(c["class_id"], np.asarray(flt.class_ids, np.int64))
    if flt.min_score is not None:
        mask &= c["score"] >= np.float32(flt.min_score)
    if flt.min_box_side is not None:
        mask &= c["side"] >= np.float32(flt.min_box_side)
    if images is not None:
        mask &= np.isin(c["image_id"], images)
    if flt.exclude_object_ids:
        excluded = np.asarray(flt.exclude_object_ids, np.int64)
        inside = excluded[table.in_range(excluded)]
        mask[inside - table.base] = False
    return mask


@dataclass
class Selector:
    """A FAISS ``IDSelector`` plus the numpy buffer it points into (kept alive with it)."""

    sel: faiss.IDSelector
    buffer: np.ndarray


def id_selector(table: ObjectTable, mask: np.ndarray) -> Selector:
    """A selector accepting exactly the object ids whose slot is set in ``mask``."""
    count = int(np.count_nonzero(mask))
    if count < max(1, int(mask.shape[0] * BATCH_SELECTOR_FRACTION)):
        ids = table.ids_where(mask)
        return Selector(faiss.IDSelectorBatch(ids.shape[0], faiss.swig_ptr(ids)), ids)
    # Bit i of the bitmap is object id i; the slots below ``base`` are all zero.
    packed = np.concatenate(
        [np.zeros(table.base // 8, np.uint8), np.packbits(mask, bitorder="little")]
    )
    return Selector(faiss.IDSelectorBitmap(packed.shape[0], faiss.swig_ptr(packed)), packed)
