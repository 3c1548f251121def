"""The one set of test factories: rows, vectors and whole collections written straight into
the database, with originals stored through the real image store (``shared.imaging.store``)."""

from tests.factories.rows import (
    CLASSES,
    add_image,
    add_item,
    add_object,
    add_objects,
    add_stored_image,
    db_object_ids,
    delete_objects,
    insert_objects,
    link_ingestion,
    make_space,
    png_bytes,
    space_row,
)
from tests.factories.seeded import (
    DIM,
    DUPLICATE_NOISE,
    NOISE,
    SEEDED_CLASSES,
    Collection,
    Seeded,
    seed_clustered,
    seed_collection,
)
from tests.factories.vectors import Boxes, boxes_of, clustered, unit

__all__ = [
    "CLASSES",
    "DIM",
    "DUPLICATE_NOISE",
    "NOISE",
    "SEEDED_CLASSES",
    "Boxes",
    "Collection",
    "Seeded",
    "add_image",
    "add_item",
    "add_object",
    "add_objects",
    "add_stored_image",
    "boxes_of",
    "clustered",
    "db_object_ids",
    "delete_objects",
    "insert_objects",
    "link_ingestion",
    "make_space",
    "png_bytes",
    "seed_clustered",
    "seed_collection",
    "space_row",
    "unit",
]
