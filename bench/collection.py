"""Synthetic collections written straight into the database (no model, no image files): the
large collections that the benchmarks and the proof battery search, report on and export.

Spaces are written by the service's own ``shared.ingestion.spaces.ensure_space``; images are
rows without a stored original; objects are inserted in bulk, ``per_image`` to an image.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session

from shared.db.database import Database
from shared.db.models import DetectedObject, Image

if TYPE_CHECKING:  # the engine imports torch: not for the benchmarks' measured processes
    from shared.yolov7.detector import EmbeddingSpaceSpec


def synthetic_spec(
    dim: int, class_names: Sequence[str], *, architecture: str = "synthetic", unique: bool = False
) -> EmbeddingSpaceSpec:
    """A space of ``dim``-d vectors that no model produced; ``unique``: a new space every
    call (random weights hash), else the same space for the same arguments."""
    from shared.yolov7.detector import EmbeddingSpaceSpec

    return EmbeddingSpaceSpec(
        weights_sha256=os.urandom(32).hex() if unique else "0" * 64,
        architecture=architecture,
        layers=(99,),
        pooling="roi_align",
        input_size=640,
        dim=dim,
        class_names=tuple(class_names),
    )


def insert_images(
    session: Session,
    n: int,
    *,
    source: str,
    width: int = 640,
    height: int = 480,
    nbytes: int = 1,
) -> list[int]:
    """``n`` JPEG image rows (random content hashes, no stored original); their ids in order."""
    rows = [
        {
            "sha256": secrets.token_hex(32),
            "width": width,
            "height": height,
            "format": "JPEG",
            "bytes": nbytes,
            "source": f"{source}/{i}.jpg",
            "storage_path": None,
        }
        for i in range(n)
    ]
    return [
        int(i)
        for i in session.scalars(
            insert(Image).returning(Image.id, sort_by_parameter_order=True), rows
        )
    ]


def insert_objects(
    session: Session,
    space_id: int,
    image_ids: Sequence[int],
    vectors: np.ndarray,
    class_ids: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    *,
    per_image: int,
    first: int = 0,
    box: tuple[float, float, float, float] = (10.0, 10.0, 90.0, 120.0),
    score: float = 0.8,
) -> None:
    """Objects ``first .. first + len(vectors) - 1`` of a collection (float32 ``[n, dim]``
    vectors), ``per_image`` to each of ``image_ids`` in order."""
    x1, y1, x2, y2 = box
    rows: list[dict[str, Any]] = []
    for j, vector in enumerate(vectors):
        i = first + j
        class_id = int(class_ids[j])
        rows.append(
            {
                "image_id": image_ids[i // per_image],
                "space_id": space_id,
                "ordinal": i % per_image,
                "x1": x1,
                "y1": y1,
                "x2": x2,
                "y2": y2,
                "class_id": class_id,
                "class_name": class_names[class_id],
                "score": score,
                "vector": np.ascontiguousarray(vector, "<f4").tobytes(),
            }
        )
    session.execute(insert(DetectedObject), rows)


def insert_batches(
    db: Database,
    space_id: int,
    image_ids: Sequence[int],
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    class_names: Sequence[str],
    *,
    per_image: int,
) -> None:
    """A collection's objects from consecutive batches of (vectors float32 ``[n, dim]``,
    class ids ``[n]``), one transaction per batch."""
    first = 0
    for vectors, class_ids in batches:
        with db.begin() as session:
            insert_objects(
                session,
                space_id,
                image_ids,
                vectors,
                class_ids,
                class_names,
                per_image=per_image,
                first=first,
            )
        first += len(vectors)
