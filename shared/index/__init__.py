"""The FAISS vector index, kept consistent with the database (see ``docs/index.md``).

``SearchFilter`` is plain data and cheap to import; the rest loads FAISS on first use, so
importing this package does not (the API's app factory and CLI client import it early).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.index.search_filter import SearchFilter

if TYPE_CHECKING:
    from shared.index.consistency import IndexCheck, IndexStatus
    from shared.index.manager import IndexManager
    from shared.index.metadata import ObjectMetadata
    from shared.index.space_index import Hit

__all__ = ["Hit", "IndexCheck", "IndexManager", "IndexStatus", "ObjectMetadata", "SearchFilter"]

_LAZY = {
    "IndexManager": "shared.index.manager",
    "Hit": "shared.index.space_index",
    "IndexCheck": "shared.index.consistency",
    "IndexStatus": "shared.index.consistency",
    "ObjectMetadata": "shared.index.metadata",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'shared.index' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
