"""A :class:`~shared.selection.Selection` → the index's low-level filter for one space."""

from __future__ import annotations

from collections.abc import Sequence

from shared.index.search_filter import SearchFilter
from shared.selection import Selection, resolve_classes


def index_filter(
    selection: Selection, class_names: Sequence[str], exclude: Sequence[int] = ()
) -> SearchFilter | None:
    """The index filter of ``selection`` in a space whose classes are ``class_names``;
    ``exclude``: object ids never to return. ``None`` when nothing is restricted.

    Raises ``unknown_class`` (:class:`~shared.selection.SelectionError`)."""
    class_ids = list(resolve_classes(class_names, selection.classes)) if selection.classes else None
    if (
        class_ids is None
        and selection.min_score is None
        and not selection.ingestions
        and selection.min_box_side is None
        and selection.min_similarity is None
        and not exclude
    ):
        return None
    return SearchFilter(
        class_ids=class_ids,
        min_score=selection.min_score,
        ingestion_ids=list(selection.ingestions) or None,
        min_box_side=selection.min_box_side,
        min_similarity=selection.min_similarity,
        exclude_object_ids=list(exclude) or None,
    )
