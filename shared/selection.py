"""Which objects: the one vocabulary of search, reports and export.

A :class:`Selection` is what a caller asks for, by name (class names or ids, ingestion ids,
thresholds); each consumer resolves it against its space: search turns it into the index's
filter (:func:`shared.search.filters.index_filter`), reports and export into SQL conditions
(:func:`shared.reports.selection.resolve_selection`). The API parses its query parameters into
one in ``api/dependencies.py``, the CLI its options in ``roisearch/commands/client.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.errors import InvalidInput

# How many class names an unknown-class message lists (the details carry up to 1000).
LISTED_CLASSES = 30


class SelectionError(InvalidInput):
    """A selection names something that is not there.

    Codes: ``unknown_class``, ``space_required``, ``space_not_found``, ``ingestion_not_found``,
    ``empty_selection``.
    """


@dataclass(frozen=True)
class Selection:
    """Restrictions on the objects to use; empty/``None`` fields restrict nothing.

    ``classes``: class names or ids (as text) of the space; ``ingestions``: objects of images
    that belong to any of them; ``min_score``: detector confidence; ``min_box_side``: shorter
    box side in original-image pixels (search only); ``min_similarity``: cosine similarity to
    the query (search only); ``space_id``: the embedding space (reports and export choose the
    only one when ``None``; search uses the query's). Labelled datasets (issue 20):
    ``origin`` (``detection`` | ``label``) and ``label_classes`` (the annotation files' class
    names) select detections and labelled boxes as :mod:`shared.annotations.filters` says.
    """

    classes: tuple[str, ...] = ()
    ingestions: tuple[int, ...] = ()
    min_score: float | None = None
    min_box_side: float | None = None
    min_similarity: float | None = None
    space_id: int | None = None
    origin: str | None = None
    label_classes: tuple[str, ...] = ()

    @property
    def labelled(self) -> bool:
        """True if the selection names an origin or label classes (labels must be looked up)."""
        return self.origin is not None or bool(self.label_classes)

    @property
    def restricts_candidates(self) -> bool:
        """True if only some objects may be returned (``min_similarity`` cuts scores only)."""
        return bool(
            self.classes
            or self.ingestions
            or self.min_score is not None
            or self.min_box_side is not None
            or self.labelled
        )


def split_names(values: Iterable[str] | None) -> tuple[str, ...]:
    """Repeated and/or comma-separated names: ``["car,cat", "dog"]`` → ``("car", "cat", "dog")``."""
    return tuple(
        part.strip() for value in values or () for part in value.split(",") if part.strip()
    )


def selection_from(
    *,
    classes: Iterable[str] | None = None,
    ingestions: Iterable[int] | None = None,
    min_score: float | None = None,
    min_box_side: float | None = None,
    min_similarity: float | None = None,
    space_id: int | None = None,
    origin: str | None = None,
    label_classes: Iterable[str] | None = None,
) -> Selection:
    """A selection from the values a caller typed: repeated and/or comma-separated class
    names, any iterable of ingestion ids, ``None`` for what was not given."""
    return Selection(
        classes=split_names(classes),
        ingestions=tuple(ingestions or ()),
        min_score=min_score,
        min_box_side=min_box_side,
        min_similarity=min_similarity,
        space_id=space_id,
        origin=origin,
        label_classes=split_names(label_classes),
    )


def resolve_classes(names: Sequence[str], wanted: Sequence[str]) -> tuple[int, ...]:
    """Class names or ids → sorted class ids of a space whose classes are ``names`` (index =
    id); unknown ones are one ``unknown_class`` error naming them and the space's classes."""
    ids: list[int] = []
    unknown: list[str] = []
    for value in wanted:
        if value.isdigit() and int(value) < len(names):
            ids.append(int(value))
        elif value in names:
            ids.append(list(names).index(value))
        else:
            unknown.append(value)
    if unknown:
        listed = ", ".join(str(n) for n in list(names)[:LISTED_CLASSES])
        more = f", … ({len(names) - LISTED_CLASSES} more)" if len(names) > LISTED_CLASSES else ""
        raise SelectionError(
            "unknown_class",
            f"unknown class(es) {', '.join(repr(u[:64]) for u in unknown[:10])}; "
            f"this space has {len(names)} classes: {listed}{more}",
            {"unknown": [u[:64] for u in unknown[:50]], "classes": list(names)[:1000]},
        )
    return tuple(sorted(set(ids)))
