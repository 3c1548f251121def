"""Raw search results and the candidate set of a search, shared by the index tiers.

Array contract: scores float32 ``[q, k]`` (descending inner products), ids int64 ``[q, k]``
(-1 = no result); a candidate mask is bool ``[table.capacity]`` over the metadata's id slots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from shared.index.filters import Selector, id_selector
from shared.index.metadata import ObjectTable


@dataclass
class Neighbours:
    """Raw results: scores float32 ``[q, k]`` (descending) and ids int64 ``[q, k]`` (-1 = none)."""

    scores: np.ndarray
    ids: np.ndarray

    @classmethod
    def empty(cls, q: int, k: int) -> Neighbours:
        return cls(np.full((q, k), -np.inf, np.float32), np.full((q, k), -1, np.int64))

    def found(self) -> np.ndarray:
        """Results per query: int ``[q]``."""
        return np.count_nonzero(self.ids >= 0, axis=1)


@dataclass
class Candidates:
    """The main-index slots a search may return: bool mask ``[capacity]`` and its count; the
    FAISS selector is built on first use (cached with the candidates)."""

    mask: np.ndarray
    count: int
    _selector: Selector | None = None

    @classmethod
    def of(cls, mask: np.ndarray) -> Candidates:
        return cls(mask, int(np.count_nonzero(mask)))

    def selector(self, table: ObjectTable) -> Selector:
        if self._selector is None:
            self._selector = id_selector(table, self.mask)
        return self._selector


def search_params(name: str, **values: Any) -> Any:
    """``faiss.<name>(**values)``: the keyword constructors (which also keep the selector
    object referenced) are added by FAISS's Python layer and unknown to its type stubs."""
    return getattr(faiss, name)(**values)


def merge(parts: list[Neighbours], k: int) -> Neighbours:
    """Top-``k`` of several result sets for the same queries."""
    if len(parts) == 1:
        return parts[0]
    scores = np.concatenate([p.scores for p in parts], axis=1)
    ids = np.concatenate([p.ids for p in parts], axis=1)
    scores = np.where(ids >= 0, scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return Neighbours(
        np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)
    )
