"""Index answers → ranked hits, per object or rolled up per image.

``results``: per query, ``(object_id, score)`` best first (cosine similarities of L2-normalised
float32 vectors). Hits are assembled from the index's in-memory metadata and the space's class
names: no SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.search.hits import IndexedHit, group_by_image, hit_out, indexed_hits
from shared.search.models import GroupBy, Hit, ImageGroup

if TYPE_CHECKING:
    from shared.index import IndexManager

# group_by=image asks the index for this many object hits per requested image, so that images
# with several matching objects still leave room for k distinct images.
GROUP_OVERFETCH = 5

Results = list[list[tuple[int, float]]]


@dataclass
class Ranked:
    hits: list[Hit]
    groups: list[ImageGroup] | None


def fetch_k(k: int, group_by: GroupBy) -> int:
    """How many object hits to ask the index for, to answer ``k`` objects or images."""
    return k * GROUP_OVERFETCH if group_by is GroupBy.image else k


def rank(
    index: IndexManager,
    space_id: int,
    class_names: Sequence[str],
    results: Results,
    k: int,
    group_by: GroupBy,
    *,
    wait: bool = True,
    labels: Callable[[], Mapping[int, str]] | None = None,
) -> list[Ranked]:
    """Ranked hits (and groups) per query of ``results`` on space ``space_id``.

    An id is kept only if it is still live in this process's index when the hits are
    assembled. Objects deleted through this process (:mod:`shared.deletion`) are removed from
    the index before the deletion answers, so they never appear afterwards; objects deleted by
    another process stay visible until this process's index catch-up applies their tombstones
    (within ``index_poll_interval_s``: the same lag the vectors have).
    """
    wanted = list({object_id for hits in results for object_id, _ in hits})
    rows: dict[int, IndexedHit] = {}
    if wanted:
        meta = index.object_metadata(space_id, wanted, blocking=wait)
        # Labelled boxes (negative class ids) are named from the label classes (one read).
        named = labels() if labels is not None and (meta.class_ids < 0).any() else None
        rows = indexed_hits(meta, class_names, named)
    ranked: list[Ranked] = []
    for hits in results:
        out = [hit_out(rows[oid], score) for oid, score in hits if oid in rows]
        if group_by is GroupBy.image:
            groups = group_by_image(out, k)
            ranked.append(Ranked(hits=[h for g in groups for h in g.hits], groups=groups))
        else:
            ranked.append(Ranked(hits=out[:k], groups=None))
    return ranked
