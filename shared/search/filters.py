"""A :class:`~shared.selection.Selection` → the index's low-level filter for one space."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.annotations.filters import UnknownLabelClassError, class_filter, label_codes
from shared.index.search_filter import SearchFilter
from shared.selection import Selection, SelectionError, resolve_classes


def index_filter(
    selection: Selection,
    class_names: Sequence[str],
    exclude: Sequence[int] = (),
    labels: Mapping[int, str] | None = None,
) -> SearchFilter | None:
    """The index filter of ``selection`` in a space whose classes are ``class_names``;
    ``exclude``: object ids never to return; ``labels``: the label classes by class-id code
    (needed when the selection is :attr:`~shared.selection.Selection.labelled`). ``None`` when
    nothing is restricted.

    Raises ``unknown_class`` and ``unknown_label_class``
    (:class:`~shared.selection.SelectionError`)."""
    class_ids = list(resolve_classes(class_names, selection.classes)) if selection.classes else None
    if selection.labelled:
        class_ids = labelled_class_ids(selection, class_ids, len(class_names), labels or {})
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


def labelled_class_ids(
    selection: Selection,
    class_ids: Sequence[int] | None,
    detector_classes: int,
    labels: Mapping[int, str],
) -> list[int]:
    """The class-id filter with the selection's ``origin`` and ``label_classes`` folded in
    (labelled boxes carry negative class-id codes: :mod:`shared.annotations.filters`)."""
    try:
        label_ids = (
            label_codes(labels, selection.label_classes) if selection.label_classes else None
        )
    except UnknownLabelClassError as exc:
        raise SelectionError(
            "unknown_label_class",
            str(exc),
            {"unknown": [u[:64] for u in exc.unknown[:50]], "label_classes": exc.known[:1000]},
        ) from None
    keep = class_filter(
        None if class_ids is None else list(class_ids),
        detector_classes,
        selection.origin,
        label_ids,
        sorted(labels),
    )
    assert keep is not None  # an origin or label classes were given
    return keep
