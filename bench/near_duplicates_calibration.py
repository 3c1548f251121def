"""Threshold calibration for ``bench.near_duplicates --calibrate``.

Every candidate pair of objects whose vectors are at least ``FLOOR`` similar gets its crop
match; planted (ground-truth) pairs and the others are compared over a grid of the two
thresholds, pair by pair (before grouping, so a chain's indirect pairs count as missed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from shared.db.database import Database
from shared.imaging.matching import confirm_score, crop_signature, prepare
from shared.reports.duplicates import DuplicateFinder
from shared.reports.originals import iter_object_pixels
from shared.reports.selection import iter_batches, resolve_selection
from shared.settings import Settings

if TYPE_CHECKING:
    from bench.near_duplicates import Truth

FLOOR = 0.8
VECTOR_GRID = (0.8, 0.85, 0.9, 0.93, 0.95, 0.97)
MATCH_GRID = (0.7, 0.75, 0.8, 0.85, 0.9)


def calibrate(db: Database, settings: Settings, truth: Truth) -> dict[str, Any]:
    with db.read() as session:
        selection = resolve_selection(session)
    finder = DuplicateFinder(
        settings.data_dir / "calibration",
        capacity=truth.objects,
        dim=selection.dim,
        threshold=FLOOR,
        sample=np.zeros((0, selection.dim), np.float32),
        seed=0,
    )
    for batch in iter_batches(db, selection):
        assert batch.vectors is not None
        finder.add(batch.ids, batch.image_ids, batch.vectors)
    left, right, sims, _ = finder.pairs()
    ids = finder.ids[: finder.count]
    signatures = {
        object_id: prepare(crop_signature(array, box))
        for object_id, array, box in iter_object_pixels(db, settings.report_config(), ids.tolist())
    }
    a_ids, b_ids = ids[left], ids[right]
    scores = np.array(
        [confirm_score(signatures[a], signatures[b]) for a, b in zip(a_ids, b_ids, strict=True)]
    )
    planted = np.array([truth.same(int(a), int(b)) for a, b in zip(a_ids, b_ids, strict=True)])
    positives = sum(1 for a, b in truth.kinds)  # detectable planted pairs
    kinds = np.array(
        [truth.kinds.get((min(a, b), max(a, b)), "") for a, b in zip(a_ids, b_ids, strict=True)]
    )
    grid = []
    for t in VECTOR_GRID:
        for m in MATCH_GRID:
            keep = (sims >= t) & (scores >= m)
            direct = keep & (kinds != "")
            grid.append(
                {
                    "vector": t,
                    "match": m,
                    "recall_direct": round(int(direct.sum()) / max(positives, 1), 3),
                    "precision": round(int((keep & planted).sum()) / max(int(keep.sum()), 1), 3),
                    "false_pairs": int((keep & ~planted).sum()),
                }
            )
    candidates = {
        (min(a, b), max(a, b)) for a, b in zip(a_ids.tolist(), b_ids.tolist(), strict=True)
    }
    missing = [{"kind": k, "pair": p} for p, k in truth.kinds.items() if p not in candidates]
    per_kind = {
        kind: {
            "vector_min": round(float(sims[kinds == kind].min()), 4),
            "match_min": round(float(scores[kinds == kind].min()), 4),
            "match_p10": round(float(np.percentile(scores[kinds == kind], 10)), 4),
        }
        for kind in sorted(set(kinds.tolist()) - {""})
    }
    negatives = scores[~planted]
    return {
        "candidate_pairs_at_floor": int(left.size),
        "planted_below_floor": missing,
        "planted": per_kind,
        "others_match_max": round(float(negatives.max()), 4) if negatives.size else None,
        "others_match_top10": [round(float(v), 3) for v in np.sort(negatives)[-10:]],
        "grid": grid,
    }
