"""Moved to :mod:`tests.factories`."""

# shim: removed after the merge
from tests.factories import (
    CLASSES,
    DIM,
    DUPLICATE_NOISE,
    NOISE,
    Collection,
    png_bytes,
    seed_clustered,
)

__all__ = [
    "CLASSES",
    "DIM",
    "DUPLICATE_NOISE",
    "NOISE",
    "Collection",
    "png_bytes",
    "seed_clustered",
]
