"""Objects written straight into the database (no model): the large collections of the load
and snapshot scenarios, and a trickle of new objects that keeps the index changing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bench.api import build_collection
from bench.collection import insert_images, insert_objects, synthetic_spec
from shared.db.database import Database
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.yolov7.detector import EmbeddingSpaceSpec


def seed_objects(settings: Settings, n: int, space: EmbeddingSpaceSpec) -> int:
    """``n`` clustered unit vectors in a fresh database (``bench.api.build_collection``)."""
    return build_collection(settings, n, space)


def synthetic_space(dim: int) -> EmbeddingSpaceSpec:
    """An embedding space of ``dim``-d vectors that no model produced (index-only scenarios)."""
    return synthetic_spec(dim, ["a", "b", "c"])


def add_objects(db: Database, space_id: int, n: int, dim: int, *, per_image: int = 10) -> None:
    """Commit ``n`` more random objects (on new images) in one transaction."""
    rng = np.random.default_rng()
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with db.begin() as session:
        image_ids = insert_images(session, -(-n // per_image), source="proof/trickle")
        insert_objects(
            session,
            space_id,
            image_ids,
            vectors,
            np.arange(n) % 3,
            ["0", "1", "2"],
            per_image=per_image,
        )
