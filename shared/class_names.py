"""Class names or ids given by a user → class ids of an embedding space, with a message that
lists the space's classes when some are unknown (the user needs them to try again)."""

from __future__ import annotations

from collections.abc import Sequence

CLASSES_LISTED = 100  # COCO has 80: every official model's classes fit


def resolve_class_ids(names: Sequence[str], wanted: Sequence[str]) -> tuple[list[int], list[str]]:
    """(ids of the known values, the unknown values); a value is a name or a class id."""
    ids: list[int] = []
    unknown: list[str] = []
    for value in wanted:
        if value.isdigit() and int(value) < len(names):
            ids.append(int(value))
        elif value in names:
            ids.append(list(names).index(value))
        else:
            unknown.append(value)
    return ids, unknown


def unknown_classes_message(unknown: Sequence[str], names: Sequence[str], owner: str) -> str:
    """``unknown class(es) 'dog'; this model has 9 classes: circle, square, …``."""
    listed = ", ".join(names[:CLASSES_LISTED])
    more = f", … ({len(names) - CLASSES_LISTED} more)" if len(names) > CLASSES_LISTED else ""
    return (
        f"unknown class(es) {', '.join(repr(u[:64]) for u in unknown[:10])}; "
        f"{owner} has {len(names)} classes: {listed}{more}"
    )
