"""Moved to :mod:`tests.factories`."""

# shim: removed after the merge
from tests.factories import (
    CLASSES,
    Boxes,
    add_image,
    add_objects,
    boxes_of,
    clustered,
    db_object_ids,
    delete_objects,
    insert_objects,
    link_ingestion,
    make_space,
)

__all__ = [
    "CLASSES",
    "Boxes",
    "add_image",
    "add_objects",
    "boxes_of",
    "clustered",
    "db_object_ids",
    "delete_objects",
    "insert_objects",
    "link_ingestion",
    "make_space",
]
