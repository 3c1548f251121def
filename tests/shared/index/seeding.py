"""Write embedding spaces, images and objects straight into the database for index tests."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from shared.db.database import Database
from shared.db.models import (
    DetectedObject,
    EmbeddingSpace,
    Image,
    Ingestion,
    IngestionItem,
    ObjectTombstone,
)

CLASSES = ["cat", "dog", "car", "boat"]
_images = itertools.count()


def clustered(
    n: int, dim: int, *, clusters: int = 20, spread: float = 0.25, seed: int = 0
) -> np.ndarray:
    """Unit vectors float32 ``[n, dim]`` drawn around ``clusters`` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, size=n)
    x = centres[labels] + spread * rng.normal(size=(n, dim)).astype(np.float32) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, np.float32)


class Boxes(TypedDict):
    """The box columns of :class:`~shared.index.rows.ObjectRows`, to splat into it by keyword."""

    x1: np.ndarray
    y1: np.ndarray
    x2: np.ndarray
    y2: np.ndarray


def boxes_of(
    sides: np.ndarray, *, x: float | np.ndarray = 1.0, y: float | np.ndarray = 2.0
) -> Boxes:
    """``ObjectRows`` box columns (float32 ``[n]``) at ``(x, y)`` with shorter side ``sides``
    (as :func:`add_objects` draws them: 5 px taller than wide)."""
    sides = np.asarray(sides, np.float32)
    x1 = np.broadcast_to(np.asarray(x, np.float32), sides.shape).copy()
    y1 = np.broadcast_to(np.asarray(y, np.float32), sides.shape).copy()
    return Boxes(x1=x1, y1=y1, x2=x1 + sides, y2=y1 + sides + np.float32(5))


def make_space(db: Database, dim: int, key: str | None = None) -> int:
    with db.begin() as session:
        space = EmbeddingSpace(
            key=key or uuid.uuid4().hex,
            weights_sha256="0" * 64,
            architecture="test",
            layers=[99],
            pooling="roi_align",
            input_size=64,
            dim=dim,
            class_names=CLASSES,
            spec={"test": True},
        )
        session.add(space)
        session.flush()
        return int(space.id)


def add_image(session: Session, *, width: int = 640, height: int = 480) -> int:
    n = next(_images)
    image = Image(
        sha256=uuid.uuid4().hex + uuid.uuid4().hex,
        width=width,
        height=height,
        format="PNG",
        bytes=100,
        source=f"test:{n}",
        storage_path=None,
    )
    session.add(image)
    session.flush()
    return int(image.id)


def add_objects(
    session: Session,
    space_id: int,
    vectors: np.ndarray,
    *,
    image_id: int | None = None,
    class_ids: Sequence[int] | None = None,
    scores: Sequence[float] | None = None,
    sides: Sequence[float] | None = None,
) -> list[int]:
    """Insert one object per vector on one (new) image; returns their ids in vector order."""
    if image_id is None:
        image_id = add_image(session)
    n = vectors.shape[0]
    rows = []
    for i in range(n):
        side = float(sides[i]) if sides is not None else 20.0 + (i % 7)
        class_id = int(class_ids[i]) if class_ids is not None else i % len(CLASSES)
        rows.append(
            {
                "image_id": image_id,
                "space_id": space_id,
                "ordinal": i,
                "x1": 1.0,
                "y1": 2.0,
                "x2": 1.0 + side,
                "y2": 2.0 + side + 5.0,
                "class_id": class_id,
                "class_name": CLASSES[class_id % len(CLASSES)],
                "score": float(scores[i]) if scores is not None else 0.5,
                "vector": np.ascontiguousarray(vectors[i], "<f4").tobytes(),
            }
        )
    if rows:
        session.execute(insert(DetectedObject), rows)
    found = session.execute(
        select(DetectedObject.id, DetectedObject.ordinal).where(
            DetectedObject.image_id == image_id, DetectedObject.space_id == space_id
        )
    ).all()
    by_ordinal = {int(o): int(i) for i, o in found}
    return [by_ordinal[i] for i in range(n)]


def insert_objects(db: Database, space_id: int, vectors: np.ndarray, **kwargs: Any) -> list[int]:
    with db.begin() as session:
        return add_objects(session, space_id, vectors, **kwargs)


def link_ingestion(db: Database, image_ids: Sequence[int]) -> int:
    with db.begin() as session:
        ingestion = Ingestion(source="t.zip", source_kind="zip", status="done")
        session.add(ingestion)
        session.flush()
        for seq, image_id in enumerate(image_ids):
            session.execute(
                insert(IngestionItem).values(
                    ingestion_id=ingestion.id,
                    member=f"{seq}.png",
                    seq=seq,
                    chunk=0,
                    status="done",
                    image_id=image_id,
                )
            )
        return int(ingestion.id)


def delete_objects(db: Database, space_id: int, object_ids: Sequence[int]) -> None:
    """Delete objects the way the API does: tombstones and row deletion in one transaction."""
    with db.begin() as session:
        session.add_all(ObjectTombstone(object_id=int(o), space_id=space_id) for o in object_ids)
        session.execute(delete(DetectedObject).where(DetectedObject.id.in_(list(object_ids))))


def db_object_ids(db: Database, space_id: int) -> list[int]:
    with db.read() as session:
        return sorted(
            int(i)
            for i in session.scalars(
                select(DetectedObject.id).where(DetectedObject.space_id == space_id)
            )
        )
