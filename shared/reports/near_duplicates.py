"""Near-duplicates that mean something: candidates from the vectors, confirmed on the pixels.

Objects: the :class:`~shared.reports.duplicates.DuplicateFinder` yields, for each object, its
``max_duplicate_candidates`` nearest neighbours whose ROI vectors are at least
``duplicate_similarity`` similar (candidates; same-class shapes of other colours are among
them); each candidate pair is then confirmed by comparing the two crops from the stored
originals (mean colours within ``MAX_COLOUR_SHIFT`` and
:func:`shared.imaging.matching.match_score` ≥ ``duplicate_match``). Two boxes of one image that
cover the same object (the smaller at least half inside the other: a detector naming one
object under two classes) are one object, never a near-duplicate pair. Groups are the
connected components of the confirmed pairs.

Images: the same with the whole-image vectors (``image_embeddings``) of the images of the
selection (its space, and its ingestions when it names some), confirmed on the whole images.

Signatures (a few KB per crop) go to memory maps in the work folder, one row per object in a
candidate pair; prepared crops are cached (``PREPARED_CACHE``), so memory does not grow with
the number of candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from shared.db.database import Database
from shared.db.models import ImageEmbedding, IngestionItem
from shared.imaging.matching import (
    MAX_COLOUR_SHIFT,
    PAD,
    SIZE,
    CropSignature,
    PreparedCrop,
    crop_signature,
    match_score,
    mean_colour,
    prepare,
)
from shared.reports.config import ReportConfig
from shared.reports.duplicates import DuplicateFinder, group_summary
from shared.reports.originals import iter_image_pixels, iter_object_pixels
from shared.reports.params import ClusterParams
from shared.reports.selection import ResolvedSelection

Progress = Callable[[float], None]
IMAGE_BATCH = 2048
SAME_OBJECT_OVERLAP = 0.5
PREPARED_CACHE = 512  # prepared crops kept (~0.3 MB each)


class SignatureStore:
    """Crop signatures of ``count`` rows in memory maps under ``workdir``."""

    def __init__(self, workdir: Path, count: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        rows = max(count, 1)
        side = SIZE + 2 * PAD
        self.windows = np.lib.format.open_memmap(
            workdir / "windows.npy", mode="w+", dtype=np.uint8, shape=(rows, side, side, 3)
        )
        self.present = np.zeros(rows, dtype=bool)
        self.boxes = np.zeros((rows, 4), dtype=np.float64)
        self.colours = np.zeros((rows, 3), dtype=np.float64)
        self._cache: dict[int, PreparedCrop] = {}

    def put(
        self, row: int, signature: CropSignature, box: tuple[float, float, float, float]
    ) -> None:
        self.windows[row] = signature.window
        self.boxes[row] = box
        self.colours[row] = mean_colour(signature)
        self.present[row] = True

    def get(self, row: int) -> PreparedCrop | None:
        """The row's crop ready for matching (kept in a bounded cache: pairs come sorted by
        their first row, so it is reused across that row's candidates)."""
        if not self.present[row]:
            return None
        cached = self._cache.get(row)
        if cached is None:
            window = np.asarray(self.windows[row])
            cached = prepare(
                CropSignature(
                    template=np.ascontiguousarray(window[PAD : PAD + SIZE, PAD : PAD + SIZE]),
                    window=window,
                )
            )
            if len(self._cache) >= PREPARED_CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[row] = cached
        return cached


def same_object(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """bool [e]: boxes float [e, 4] of the same image that cover one object — the smaller box
    at least half inside the other (a detector naming one object twice, under two classes, is
    not a near-duplicate)."""
    ix = np.minimum(boxes_a[:, 2], boxes_b[:, 2]) - np.maximum(boxes_a[:, 0], boxes_b[:, 0])
    iy = np.minimum(boxes_a[:, 3], boxes_b[:, 3]) - np.maximum(boxes_a[:, 1], boxes_b[:, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    return np.asarray(inter >= SAME_OBJECT_OVERLAP * np.maximum(np.minimum(area_a, area_b), 1e-9))


def _scores(
    store: SignatureStore,
    left: np.ndarray,
    right: np.ndarray,
    progress: Progress | None,
    skip: np.ndarray | None = None,
) -> np.ndarray:
    """float32 [e] crop match of each pair of store rows: NaN when a crop is missing; -1 for
    the pairs ``skip`` marks and those whose mean colours differ by more than
    ``MAX_COLOUR_SHIFT`` (see :func:`shared.imaging.matching.confirm_score`)."""
    out = np.full(left.size, np.nan, dtype=np.float32)
    present = store.present[left] & store.present[right]
    # The colour gate first: cheap, and it settles most candidates (same shape, other colour).
    shift = np.linalg.norm(store.colours[left] - store.colours[right], axis=1)
    out[present & (shift > MAX_COLOUR_SHIFT)] = -1.0
    if skip is not None:
        out[skip] = -1.0
    todo = np.flatnonzero(np.isnan(out) & present)
    todo = todo[np.lexsort((right[todo], left[todo]))]  # by first row: prepared crops reused
    for n, pair in enumerate(todo.tolist()):
        sa, sb = store.get(int(left[pair])), store.get(int(right[pair]))
        if sa is not None and sb is not None:
            out[pair] = match_score(sa, sb)
        if progress is not None and n % 256 == 0:
            progress(n / max(todo.size, 1))
    return out


def _confirm(
    ids: np.ndarray,
    image_ids: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    sims: np.ndarray,
    scores: np.ndarray | None,
    threshold: float | None,
    max_groups: int,
) -> dict[str, Any]:
    """The summary of the confirmed pairs (every candidate when ``threshold`` is None)."""
    if threshold is None or scores is None:
        return {
            "candidate_pairs": int(left.size),
            "unverified_pairs": 0,
            **group_summary(ids, image_ids, left, right, {"min_similarity": sims}, max_groups),
        }
    confirmed = scores >= threshold  # NaN (a crop missing) never confirms
    return {
        "candidate_pairs": int(left.size),
        "unverified_pairs": int(np.isnan(scores).sum()),
        **group_summary(
            ids,
            image_ids,
            left[confirmed],
            right[confirmed],
            {"min_similarity": sims[confirmed], "min_match": scores[confirmed]},
            max_groups,
        ),
    }


def object_duplicates(
    db: Database,
    config: ReportConfig,
    finder: DuplicateFinder,
    params: ClusterParams,
    workdir: Path,
    progress: Progress,
) -> dict[str, Any]:
    """Object-level near-duplicate groups of the objects added to ``finder`` (JSON-ready)."""
    left, right, sims, truncated = finder.pairs(lambda f: progress(0.3 * f))
    ids = finder.ids[: finder.count]
    image_ids = finder.image_ids[: finder.count]
    scores = None
    if params.duplicate_match is not None and left.size:
        rows = np.unique(np.concatenate([left, right]))
        store = SignatureStore(workdir / "crops", rows.size)
        position = {int(ids[r]): n for n, r in enumerate(rows.tolist())}
        for done, (object_id, array, box) in enumerate(
            iter_object_pixels(db, config, position.keys())
        ):
            store.put(position[object_id], crop_signature(array, box), box)
            if done % 256 == 0:
                progress(0.3 + 0.3 * done / rows.size)
        at = np.searchsorted(rows, left), np.searchsorted(rows, right)
        one = (image_ids[left] == image_ids[right]) & same_object(
            store.boxes[at[0]], store.boxes[at[1]]
        )
        scores = _scores(store, at[0], at[1], lambda f: progress(0.6 + 0.4 * f), skip=one)
    return {
        "threshold": finder.threshold,
        "match_threshold": params.duplicate_match,
        "method": finder.method,
        "truncated": truncated,
        **_confirm(
            ids,
            image_ids,
            left,
            right,
            sims,
            scores,
            params.duplicate_match,
            params.max_duplicate_groups,
        ),
    }


def _image_query(selection: ResolvedSelection) -> Any:
    query = select(ImageEmbedding.image_id, ImageEmbedding.vector).where(
        ImageEmbedding.space_id == selection.space_id
    )
    if selection.ingestion_ids:
        query = query.where(
            ImageEmbedding.image_id.in_(
                select(IngestionItem.image_id).where(
                    IngestionItem.ingestion_id.in_(selection.ingestion_ids)
                )
            )
        )
    return query


def _image_batches(
    db: Database, selection: ResolvedSelection
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(image ids int64 [n], unit vectors float32 [n, d]) of the selection's images, by id."""
    last = 0
    while True:
        with db.read() as session:
            rows = session.execute(
                _image_query(selection)
                .where(ImageEmbedding.image_id > last)
                .order_by(ImageEmbedding.image_id)
                .limit(IMAGE_BATCH)
            ).all()
        if not rows:
            return
        ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
        vectors = np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]).astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        last = int(ids[-1])
        yield ids, vectors


def image_duplicates(
    db: Database,
    config: ReportConfig,
    selection: ResolvedSelection,
    params: ClusterParams,
    workdir: Path,
    progress: Progress,
) -> dict[str, Any] | None:
    """Image-level near-duplicate groups of the selection's images (None: switched off —
    ``image_duplicate_similarity`` or ``duplicate_similarity`` null — or no image vectors)."""
    threshold = params.image_duplicate_similarity
    if threshold is None or params.duplicate_similarity is None:  # null: no near-duplicates
        return None
    with db.read() as session:
        count = session.scalar(select(func.count()).select_from(_image_query(selection).subquery()))
    if not count:
        return None
    finder: DuplicateFinder | None = None
    for ids, vectors in _image_batches(db, selection):
        if finder is None:
            finder = DuplicateFinder(
                workdir / "image-vectors",
                capacity=int(count),
                dim=vectors.shape[1],
                threshold=threshold,
                sample=vectors[: min(len(vectors), 4096)],
                seed=params.seed,
                neighbours=params.max_duplicate_candidates,
            )
        finder.add(ids, ids, vectors)
    if finder is None:
        return None
    left, right, sims, truncated = finder.pairs(lambda f: progress(0.3 * f))
    ids = finder.ids[: finder.count]
    scores = None
    if params.duplicate_match is not None and left.size:
        rows = np.unique(np.concatenate([left, right]))
        store = SignatureStore(workdir / "images", rows.size)
        position = {int(ids[r]): n for n, r in enumerate(rows.tolist())}
        for image_id, array in iter_image_pixels(db, config, position.keys()):
            h, w = array.shape[:2]
            frame = (0.0, 0.0, float(w), float(h))
            store.put(position[image_id], crop_signature(array, frame), frame)
        scores = _scores(
            store,
            np.searchsorted(rows, left),
            np.searchsorted(rows, right),
            lambda f: progress(0.3 + 0.7 * f),
        )
    summary = _confirm(
        ids, ids, left, right, sims, scores, params.duplicate_match, params.max_duplicate_groups
    )
    for group in summary["groups"]:
        del group["object_ids"]  # members are images here
    summary["images_in_groups"] = summary.pop("objects_in_groups")
    return {
        "threshold": threshold,
        "match_threshold": params.duplicate_match,
        "method": finder.method,
        "images": int(count),
        "truncated": truncated,
        **summary,
    }
