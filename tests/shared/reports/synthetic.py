"""A synthetic collection with clear class structure and planted near-duplicates.

Each class has its own random centre; an object's vector is its class centre plus Gaussian noise
(within-class cosine similarity about 0.75, across classes about 0), L2-normalised, so clusters
should follow the classes. Planted duplicates copy an existing object's vector with tiny noise
(similarity above 0.999) and its pixels into another image (the only pixel-identical crops: every
image is random noise otherwise). Images are real PNG files in the image store, so
crops work; images are spread over two ingestions.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import insert

from shared.db.database import Database
from shared.db.models import (
    DetectedObject,
    EmbeddingSpace,
    Image,
    ImageEmbedding,
    Ingestion,
    IngestionItem,
)
from shared.settings import Settings
from tests.api.seeding import png_bytes

CLASSES = ["cat", "dog", "car", "boat"]
DIM = 32
NOISE = 0.6
DUPLICATE_NOISE = 0.002


@dataclass
class Collection:
    space_id: int
    ingestion_ids: list[int]
    image_ids: list[int] = field(default_factory=list)
    object_ids: list[int] = field(default_factory=list)
    class_of: dict[int, int] = field(default_factory=dict)
    image_of: dict[int, int] = field(default_factory=dict)
    ingestion_of_image: dict[int, int] = field(default_factory=dict)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    duplicate_pairs: list[tuple[int, int]] = field(default_factory=list)
    lookalike_pairs: list[tuple[int, int]] = field(default_factory=list)
    image_copies: list[tuple[int, int]] = field(default_factory=list)


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def seed_clustered(
    settings: Settings,
    db: Database,
    *,
    images: int = 40,
    objects_per_image: int = 4,
    duplicates: int = 3,
    seed: int = 7,
    classes: list[str] | None = None,
    space_key: str = "synthetic-space",
    dim: int = DIM,
    lookalikes: int = 0,
    image_copies: int = 0,
) -> Collection:
    """``lookalikes``: objects with a near-copy of another object's vector but pixels of their
    own (not near-duplicates); ``image_copies``: images stored again at 75 % size, with
    whole-image vectors (``image_embeddings``) for every image, the copies' near their
    originals'."""
    names = classes or CLASSES
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(names), dim)).astype(np.float32)
    store = settings.image_store_dir
    with db.begin() as session:
        space = EmbeddingSpace(
            key=space_key,
            weights_sha256="1" * 64,
            architecture="synthetic",
            layers=[99],
            pooling="roi_align",
            input_size=64,
            dim=dim,
            class_names=names,
            spec={"synthetic": True},
        )
        ingestions = [
            Ingestion(source=f"part{i}.zip", source_kind="zip", status="done") for i in range(2)
        ]
        session.add_all([space, *ingestions])
        session.flush()
        out = Collection(space_id=space.id, ingestion_ids=[i.id for i in ingestions])

        def add_image(
            i: int, paste: tuple[int, int] | None = None, data: bytes | None = None
        ) -> int:
            """Image ``i`` (``data``: its PNG, else random noise); ``paste`` (object id,
            ordinal): that object's pixels copied into the box an object of that ordinal gets
            here."""
            data = data or png_bytes(120, 80, seed * 10_000 + i)
            size = PILImage.open(io.BytesIO(data)).size
            if paste is not None:
                source_id, ordinal = paste
                src = np.asarray(PILImage.open(io.BytesIO(pixels[out.image_of[source_id]])))
                array = np.asarray(PILImage.open(io.BytesIO(data))).copy()
                sx, sy = _corner(ordinal_of[source_id])
                dx, dy = _corner(ordinal)
                array[dy : dy + 18, dx : dx + 20] = src[sy : sy + 18, sx : sx + 20]
                buffer = io.BytesIO()
                PILImage.fromarray(array).save(buffer, format="PNG")
                data = buffer.getvalue()
            sha = hashlib.sha256(data).hexdigest()
            path = store / sha[:2] / sha
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            image = Image(
                sha256=sha,
                width=size[0],
                height=size[1],
                format="PNG",
                bytes=len(data),
                source=f"synthetic:{i}.png",
                storage_path=str(path.relative_to(settings.data_dir)),
            )
            session.add(image)
            session.flush()
            pixels[image.id] = data
            ingestion_id = out.ingestion_ids[i % 2]
            session.execute(
                insert(IngestionItem).values(
                    ingestion_id=ingestion_id,
                    member=f"{i}.png",
                    seq=i,
                    chunk=0,
                    size=len(data),
                    status="done",
                    image_id=image.id,
                )
            )
            out.image_ids.append(image.id)
            out.ingestion_of_image[image.id] = ingestion_id
            return int(image.id)

        pixels: dict[int, bytes] = {}
        ordinal_of: dict[int, int] = {}

        def add_object(image_id: int, ordinal: int, class_id: int, vector: np.ndarray) -> int:
            x1, y1 = (float(v) for v in _corner(ordinal))
            obj = DetectedObject(
                image_id=image_id,
                space_id=space.id,
                ordinal=ordinal,
                x1=x1,
                y1=y1,
                x2=x1 + 20,
                y2=y1 + 18,
                class_id=class_id,
                class_name=names[class_id],
                score=0.3 + 0.1 * (ordinal % 5),
                vector=vector.astype("<f4").tobytes(),
            )
            session.add(obj)
            session.flush()
            out.object_ids.append(obj.id)
            out.class_of[obj.id] = class_id
            out.image_of[obj.id] = image_id
            out.vectors[obj.id] = vector
            ordinal_of[obj.id] = ordinal
            return int(obj.id)

        for i in range(images):
            image_id = add_image(i)
            for j in range(objects_per_image):
                class_id = int(rng.integers(len(names)))
                vector = _unit(centres[class_id] + NOISE * rng.normal(size=dim))
                add_object(image_id, j, class_id, vector)
        for d in range(duplicates):
            original = out.object_ids[(d * 7 + 3) % len(out.object_ids)]
            image_id = add_image(images + d, paste=(original, 0))
            copy = _unit(out.vectors[original] + DUPLICATE_NOISE * rng.normal(size=dim))
            duplicate = add_object(image_id, 0, out.class_of[original], copy)
            out.duplicate_pairs.append((original, duplicate))
        for d in range(lookalikes):
            original = out.object_ids[(d * 11 + 5) % images]
            image_id = add_image(images + duplicates + d)
            copy = _unit(out.vectors[original] + DUPLICATE_NOISE * rng.normal(size=dim))
            out.lookalike_pairs.append(
                (original, add_object(image_id, 0, out.class_of[original], copy))
            )
        if image_copies:
            image_vectors = {i: _unit(rng.normal(size=dim)) for i in out.image_ids}
            for d in range(image_copies):
                original = out.image_ids[d * 5 + 1]
                small = PILImage.open(io.BytesIO(pixels[original])).resize((90, 60))
                buffer = io.BytesIO()
                small.save(buffer, format="PNG")
                copied = add_image(images + duplicates + lookalikes + d, data=buffer.getvalue())
                image_vectors[copied] = _unit(
                    image_vectors[original] + DUPLICATE_NOISE * rng.normal(size=dim)
                )
                out.image_copies.append((original, copied))
            session.add_all(
                ImageEmbedding(
                    image_id=i, space_id=space.id, object_count=0, vector=v.astype("<f4").tobytes()
                )
                for i, v in image_vectors.items()
            )
    return out


def _corner(ordinal: int) -> tuple[int, int]:
    """Top-left corner of the 20 x 18 box of the object of this ordinal in its image."""
    return 4 + 25 * (ordinal % 4), 6 + 12 * (ordinal % 4)
