"""Rows written straight into the database: embedding spaces, images (with or without a stored
original), ingestion items and objects. The building blocks of every test collection."""

from __future__ import annotations

import hashlib
import io
import itertools
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image as PILImage
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
from shared.imaging.store import store_original
from shared.settings import Settings

CLASSES = ["cat", "dog", "car", "boat"]
_images = itertools.count()


def png_bytes(width: int, height: int, seed: int) -> bytes:
    """A PNG of uniform noise, the same bytes for the same arguments."""
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def space_row(
    key: str,
    dim: int,
    class_names: Sequence[str] = CLASSES,
    *,
    weights_sha256: str = "0" * 64,
    architecture: str = "test",
    spec: dict[str, Any] | None = None,
) -> EmbeddingSpace:
    """An embedding space that no model produced (not yet added to a session)."""
    return EmbeddingSpace(
        key=key,
        weights_sha256=weights_sha256,
        architecture=architecture,
        layers=[99],
        pooling="roi_align",
        input_size=64,
        dim=dim,
        class_names=list(class_names),
        spec={"test": True} if spec is None else spec,
    )


def make_space(db: Database, dim: int, key: str | None = None) -> int:
    with db.begin() as session:
        space = space_row(key or uuid.uuid4().hex, dim)
        session.add(space)
        session.flush()
        return int(space.id)


def add_image(session: Session, *, width: int = 640, height: int = 480) -> int:
    """An image row without a stored original (index tests never read the file)."""
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


def add_stored_image(
    session: Session, settings: Settings, data: bytes, *, width: int, height: int, source: str
) -> int:
    """A PNG image row whose original is written through the real image store."""
    sha = hashlib.sha256(data).hexdigest()
    image = Image(
        sha256=sha,
        width=width,
        height=height,
        format="PNG",
        bytes=len(data),
        source=source,
        storage_path=store_original(settings.data_dir, sha, data),
    )
    session.add(image)
    session.flush()
    return int(image.id)


def add_item(
    session: Session, ingestion_id: int, seq: int, image_id: int, *, size: int | None = None
) -> None:
    """A finished ingestion item (member ``<seq>.png``) that produced ``image_id``."""
    session.execute(
        insert(IngestionItem).values(
            ingestion_id=ingestion_id,
            member=f"{seq}.png",
            seq=seq,
            chunk=0,
            size=size,
            status="done",
            image_id=image_id,
        )
    )


def add_object(
    session: Session,
    *,
    image_id: int,
    space_id: int,
    ordinal: int,
    box: tuple[float, float, float, float],
    class_id: int,
    class_name: str,
    score: float,
    vector: np.ndarray,
) -> int:
    x1, y1, x2, y2 = box
    obj = DetectedObject(
        image_id=image_id,
        space_id=space_id,
        ordinal=ordinal,
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
        class_id=class_id,
        class_name=class_name,
        score=score,
        vector=vector.astype("<f4").tobytes(),
    )
    session.add(obj)
    session.flush()
    return int(obj.id)


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
            add_item(session, ingestion.id, seq, image_id)
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
