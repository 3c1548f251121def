"""Write a small, real collection into the database and the image store for API tests.

Images are real PNG files in the content-addressed store; objects carry unit vectors drawn
around a few cluster centres, so that neighbours are predictable: objects of one cluster are
each other's nearest neighbours.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import insert

from shared.db.database import Database
from shared.db.models import DetectedObject, EmbeddingSpace, Image, Ingestion, IngestionItem
from shared.settings import Settings

DIM = 32
CLASSES = ["cat", "dog", "car"]


@dataclass
class Seeded:
    space_id: int
    ingestion_id: int
    image_ids: list[int]
    object_ids: list[int]
    cluster_of: dict[int, int] = field(default_factory=dict)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)


def png_bytes(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def seed_collection(
    settings: Settings,
    db: Database,
    *,
    images: int = 6,
    objects_per_image: int = 3,
    clusters: int = 3,
    seed: int = 0,
    space_key: str = "test-space",
) -> Seeded:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM)).astype(np.float32)
    store = settings.image_store_dir
    store.mkdir(parents=True, exist_ok=True)
    with db.begin() as session:
        space = EmbeddingSpace(
            key=space_key,
            weights_sha256="0" * 64,
            architecture="test",
            layers=[99],
            pooling="roi_align",
            input_size=64,
            dim=DIM,
            class_names=CLASSES,
            spec={"test": True},
        )
        ingestion = Ingestion(source="seed.zip", source_kind="zip", status="done", total_items=0)
        session.add_all([space, ingestion])
        session.flush()
        result = Seeded(space_id=space.id, ingestion_id=ingestion.id, image_ids=[], object_ids=[])
        for i in range(images):
            data = png_bytes(96, 64, seed * 1000 + i)
            sha = hashlib.sha256(data).hexdigest()
            path = store / sha[:2] / f"{sha}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            image = Image(
                sha256=sha,
                width=96,
                height=64,
                format="PNG",
                bytes=len(data),
                source=f"seed.zip:{i}.png",
                storage_path=str(path.relative_to(settings.data_dir)),
            )
            session.add(image)
            session.flush()
            result.image_ids.append(image.id)
            session.execute(
                insert(IngestionItem).values(
                    ingestion_id=ingestion.id,
                    member=f"{i}.png",
                    seq=i,
                    chunk=0,
                    size=len(data),
                    status="done",
                    image_id=image.id,
                )
            )
            for j in range(objects_per_image):
                cluster = (i + j) % clusters
                vector = centres[cluster] + 0.05 * rng.normal(size=DIM).astype(np.float32)
                vector /= np.linalg.norm(vector)
                x1, y1 = 4.0 + 20 * j, 4.0 + 10 * j
                obj = DetectedObject(
                    image_id=image.id,
                    space_id=space.id,
                    ordinal=j,
                    x1=x1,
                    y1=y1,
                    x2=x1 + 16 + 2 * j,
                    y2=y1 + 16 + 2 * j,
                    class_id=cluster % len(CLASSES),
                    class_name=CLASSES[cluster % len(CLASSES)],
                    score=0.5 + 0.1 * j,
                    vector=vector.astype("<f4").tobytes(),
                )
                session.add(obj)
                session.flush()
                result.object_ids.append(obj.id)
                result.cluster_of[obj.id] = cluster
                result.vectors[obj.id] = vector
        ingestion.total_items = images
    return result
