"""Embedding-space rows: one per distinct EmbeddingSpaceSpec (weights, layers, pooling, size)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import EmbeddingSpace
from shared.db.upserts import insert_ignore

if TYPE_CHECKING:
    from shared.yolov7.detector import EmbeddingSpaceSpec


def ensure_space(session: Session, spec: EmbeddingSpaceSpec) -> int:
    """Return the id of the space for ``spec``, inserting it if new (race-free)."""
    row = {
        "key": spec.key,
        "weights_sha256": spec.weights_sha256,
        "architecture": spec.architecture,
        "layers": list(spec.layers),
        "pooling": spec.pooling,
        "input_size": spec.input_size,
        "dim": spec.dim,
        "class_names": list(spec.class_names),
        "spec": spec.as_dict(),
    }
    insert_ignore(session, EmbeddingSpace.__table__, [row])  # type: ignore[arg-type]
    space_id = session.scalar(select(EmbeddingSpace.id).where(EmbeddingSpace.key == spec.key))
    assert space_id is not None
    return space_id


def class_name(names: Sequence[str], class_id: int) -> str:
    """The name stored with an object of ``class_id`` in a space whose classes are ``names``
    (its number when the model has no name for it)."""
    return names[class_id] if 0 <= class_id < len(names) else str(class_id)
