"""Objects written straight into the database (no model): the large collections of the load
and snapshot scenarios, and a trickle of new objects that keeps the index changing."""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
from sqlalchemy import insert, select

from bench.api import build_collection
from shared.db.database import Database
from shared.db.models import DetectedObject, EmbeddingSpace, Image
from shared.settings import Settings


def seed_objects(settings: Settings, n: int, space_kwargs: dict[str, object]) -> int:
    """``n`` clustered unit vectors in a fresh database (``bench.api.build_collection``)."""
    return build_collection(settings, n, space_kwargs)


def synthetic_space(dim: int) -> dict[str, object]:
    """An embedding space of ``dim``-d vectors that no model produced (index-only scenarios)."""
    return {
        "key": f"proof-synthetic-{dim}",
        "weights_sha256": "0" * 64,
        "architecture": "synthetic",
        "layers": [0],
        "pooling": "roi_align",
        "input_size": 256,
        "dim": dim,
        "class_names": ["a", "b", "c"],
        "spec": {"synthetic": True},
    }


def space_dim(db: Database, space_id: int) -> int:
    with db.read() as session:
        dim = session.scalar(select(EmbeddingSpace.dim).where(EmbeddingSpace.id == space_id))
    assert dim is not None
    return int(dim)


def add_objects(db: Database, space_id: int, n: int, dim: int, *, per_image: int = 10) -> None:
    """Commit ``n`` more random objects (on new images) in one transaction."""
    rng = np.random.default_rng()
    images = max(1, (n + per_image - 1) // per_image)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with db.begin() as session:
        image_ids = list(
            session.scalars(
                insert(Image).returning(Image.id),
                [
                    {
                        "sha256": "e" + secrets.token_hex(32)[1:],
                        "width": 640,
                        "height": 480,
                        "format": "JPEG",
                        "bytes": 1,
                        "source": "proof/trickle",
                        "storage_path": None,
                    }
                    for _ in range(images)
                ],
            )
        )
        rows: list[dict[str, Any]] = [
            {
                "image_id": image_ids[i // per_image],
                "space_id": space_id,
                "ordinal": i % per_image,
                "x1": 10.0,
                "y1": 10.0,
                "x2": 90.0,
                "y2": 120.0,
                "class_id": i % 3,
                "class_name": str(i % 3),
                "score": 0.8,
                "vector": vectors[i].astype("<f4").tobytes(),
            }
            for i in range(n)
        ]
        session.execute(insert(DetectedObject), rows)
