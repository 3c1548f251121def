"""Moved to :mod:`tests.factories`."""

# shim: removed after the merge
from tests.factories import DIM, Seeded, png_bytes, seed_collection
from tests.factories import SEEDED_CLASSES as CLASSES

__all__ = ["CLASSES", "DIM", "Seeded", "png_bytes", "seed_collection"]
