"""Query by examples: the Rocchio query of positive (and negative) example objects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import DetectedObject
from shared.errors import InvalidInput, NotFound
from shared.search.hits import vector_of

# Rocchio-style weight of the negative examples' centroid.
NEGATIVE_WEIGHT = 0.5


@dataclass(frozen=True)
class ExampleQuery:
    """Deduplicated examples (a negative that is also positive counts as positive), their
    space and the query vector: float32 ``[D]``, L2-normalised."""

    positive: list[int]
    negative: list[int]
    space_id: int
    vector: np.ndarray


def example_query(session: Session, positive: list[int], negative: list[int]) -> ExampleQuery:
    """Load the examples and build the query. Raises ``object_not_found`` (naming the missing
    ids), ``mixed_spaces``, ``degenerate_examples``."""
    positive = list(dict.fromkeys(positive))
    negative = [i for i in dict.fromkeys(negative) if i not in positive]
    ids = positive + negative
    rows = {
        o.id: o for o in session.scalars(select(DetectedObject).where(DetectedObject.id.in_(ids)))
    }
    missing = [i for i in ids if i not in rows]
    if missing:
        raise NotFound(
            "object_not_found",
            f"example object(s) {', '.join(map(str, missing[:20]))} do not exist",
            {"missing": missing[:100]},
        )
    spaces = {rows[i].space_id for i in ids}
    if len(spaces) > 1:
        raise InvalidInput(
            "mixed_spaces",
            "examples come from different embedding spaces (models); their vectors are "
            "not comparable",
            {"space_ids": sorted(spaces)},
        )
    vector = rocchio(
        np.stack([vector_of(rows[i]) for i in positive]),
        np.stack([vector_of(rows[i]) for i in negative]) if negative else None,
    )
    return ExampleQuery(positive, negative, spaces.pop(), vector)


def rocchio(positive: np.ndarray, negative: np.ndarray | None) -> np.ndarray:
    """[P,D] and [N,D] unit vectors → one unit query vector [D] (float32): the positives'
    centroid minus ``NEGATIVE_WEIGHT`` times the negatives'."""
    query = positive.mean(axis=0)
    if negative is not None and len(negative):
        query = query - NEGATIVE_WEIGHT * negative.mean(axis=0)
    norm = float(np.linalg.norm(query))
    if norm < 1e-6:
        raise InvalidInput(
            "degenerate_examples",
            "the positive and negative examples cancel out; give more distinct examples",
        )
    return (query / norm).astype(np.float32)
