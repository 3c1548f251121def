"""Whole collections for API, report, export and CLI tests: real PNG originals in the image
store, ingestion items, and objects whose vectors have a known neighbourhood structure.

- :func:`seed_collection`: unit vectors drawn tightly around a few cluster centres, so that
  objects of one cluster are each other's nearest neighbours (one ingestion).
- :func:`seed_clustered`: each class has its own random centre; an object's vector is its class
  centre plus Gaussian noise (within-class cosine similarity about 0.75, across classes about 0),
  so clusters should follow the classes. Planted duplicates copy an existing object's vector
  with tiny noise (similarity above 0.999) into another image. Images are spread over two
  ingestions.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image as PILImage

from shared.db.database import Database
from shared.db.models import ImageEmbedding, Ingestion
from shared.settings import Settings
from tests.factories.rows import (
    CLASSES,
    add_item,
    add_object,
    add_stored_image,
    png_bytes,
    space_row,
)
from tests.factories.vectors import unit

DIM = 32
SEEDED_CLASSES = CLASSES[:3]  # seed_collection's classes: cat, dog, car
NOISE = 0.6
DUPLICATE_NOISE = 0.002


@dataclass
class Seeded:
    space_id: int
    ingestion_id: int
    image_ids: list[int]
    object_ids: list[int]
    cluster_of: dict[int, int] = field(default_factory=dict)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)


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
    names = SEEDED_CLASSES
    with db.begin() as session:
        space = space_row(space_key, DIM, names)
        ingestion = Ingestion(source="seed.zip", source_kind="zip", status="done", total_items=0)
        session.add_all([space, ingestion])
        session.flush()
        result = Seeded(space_id=space.id, ingestion_id=ingestion.id, image_ids=[], object_ids=[])
        for i in range(images):
            data = png_bytes(96, 64, seed * 1000 + i)
            image_id = add_stored_image(
                session, settings, data, width=96, height=64, source=f"seed.zip:{i}.png"
            )
            result.image_ids.append(image_id)
            add_item(session, ingestion.id, i, image_id, size=len(data))
            for j in range(objects_per_image):
                cluster = (i + j) % clusters
                vector = centres[cluster] + 0.05 * rng.normal(size=DIM).astype(np.float32)
                vector /= np.linalg.norm(vector)
                x1, y1 = 4.0 + 20 * j, 4.0 + 10 * j
                object_id = add_object(
                    session,
                    image_id=image_id,
                    space_id=space.id,
                    ordinal=j,
                    box=(x1, y1, x1 + 16 + 2 * j, y1 + 16 + 2 * j),
                    class_id=cluster % len(names),
                    class_name=names[cluster % len(names)],
                    score=0.5 + 0.1 * j,
                    vector=vector,
                )
                result.object_ids.append(object_id)
                result.cluster_of[object_id] = cluster
                result.vectors[object_id] = vector
        ingestion.total_items = images
    return result


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
    """A clustered collection. Planted ``duplicates`` copy an object's vector (tiny noise) and
    its pixels into another image (the only pixel-identical crops: every image is random noise
    otherwise). ``lookalikes``: objects with a near-copy of another object's vector but pixels
    of their own (not near-duplicates); ``image_copies``: images stored again at 75 % size, with
    whole-image vectors (``image_embeddings``) for every image, the copies' near their
    originals'."""
    names = classes or CLASSES
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(names), dim)).astype(np.float32)
    pixels: dict[int, bytes] = {}
    ordinal_of: dict[int, int] = {}
    with db.begin() as session:
        space = space_row(
            space_key,
            dim,
            names,
            weights_sha256="1" * 64,
            architecture="synthetic",
            spec={"synthetic": True},
        )
        ingestions = [
            Ingestion(source=f"part{i}.zip", source_kind="zip", status="done") for i in range(2)
        ]
        session.add_all([space, *ingestions])
        session.flush()
        out = Collection(space_id=space.id, ingestion_ids=[i.id for i in ingestions])

        def image(i: int, paste: tuple[int, int] | None = None, data: bytes | None = None) -> int:
            """Image ``i`` (``data``: its PNG, else random noise); ``paste`` (object id,
            ordinal): that object's pixels copied into the box an object of that ordinal gets
            here."""
            data = data or png_bytes(120, 80, seed * 10_000 + i)
            if paste is not None:
                data = _pasted(data, pixels[out.image_of[paste[0]]], ordinal_of[paste[0]], paste[1])
            width, height = PILImage.open(io.BytesIO(data)).size
            image_id = add_stored_image(
                session, settings, data, width=width, height=height, source=f"synthetic:{i}.png"
            )
            pixels[image_id] = data
            ingestion_id = out.ingestion_ids[i % 2]
            add_item(session, ingestion_id, i, image_id, size=len(data))
            out.image_ids.append(image_id)
            out.ingestion_of_image[image_id] = ingestion_id
            return image_id

        def obj(image_id: int, ordinal: int, class_id: int, vector: np.ndarray) -> int:
            x1, y1 = (float(v) for v in _corner(ordinal))
            object_id = add_object(
                session,
                image_id=image_id,
                space_id=space.id,
                ordinal=ordinal,
                box=(x1, y1, x1 + 20, y1 + 18),
                class_id=class_id,
                class_name=names[class_id],
                score=0.3 + 0.1 * (ordinal % 5),
                vector=vector,
            )
            out.object_ids.append(object_id)
            out.class_of[object_id] = class_id
            out.image_of[object_id] = image_id
            out.vectors[object_id] = vector
            ordinal_of[object_id] = ordinal
            return object_id

        for i in range(images):
            image_id = image(i)
            for j in range(objects_per_image):
                class_id = int(rng.integers(len(names)))
                obj(image_id, j, class_id, unit(centres[class_id] + NOISE * rng.normal(size=dim)))
        for d in range(duplicates):
            original = out.object_ids[(d * 7 + 3) % len(out.object_ids)]
            image_id = image(images + d, paste=(original, 0))
            copy = unit(out.vectors[original] + DUPLICATE_NOISE * rng.normal(size=dim))
            out.duplicate_pairs.append((original, obj(image_id, 0, out.class_of[original], copy)))
        for d in range(lookalikes):
            original = out.object_ids[(d * 11 + 5) % images]
            image_id = image(images + duplicates + d)
            copy = unit(out.vectors[original] + DUPLICATE_NOISE * rng.normal(size=dim))
            out.lookalike_pairs.append((original, obj(image_id, 0, out.class_of[original], copy)))
        if image_copies:
            image_vectors = {i: unit(rng.normal(size=dim)) for i in out.image_ids}
            for d in range(image_copies):
                original = out.image_ids[d * 5 + 1]
                small = PILImage.open(io.BytesIO(pixels[original])).resize((90, 60))
                buffer = io.BytesIO()
                small.save(buffer, format="PNG")
                copied = image(images + duplicates + lookalikes + d, data=buffer.getvalue())
                image_vectors[copied] = unit(
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


def _pasted(data: bytes, source: bytes, source_ordinal: int, ordinal: int) -> bytes:
    """``data`` (a PNG) with the box of ``source_ordinal`` in ``source`` pasted at ``ordinal``."""
    src = np.asarray(PILImage.open(io.BytesIO(source)))
    array = np.asarray(PILImage.open(io.BytesIO(data))).copy()
    sx, sy = _corner(source_ordinal)
    dx, dy = _corner(ordinal)
    array[dy : dy + 18, dx : dx + 20] = src[sy : sy + 18, sx : sx + 20]
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
