"""Deterministic, order-independent sampling by id (bottom-k on a keyed hash).

Every id gets a pseudo-random 64-bit key ``splitmix64(id ^ seed)``; a sample of size m is the m
ids with the smallest keys. It does not depend on the order rows arrive in or on batch
boundaries, it can be computed in one streaming pass in O(m) memory, and the smallest m keys of
a sample are themselves the bottom-m sample of the whole (used for the 2-D map).
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(values: np.ndarray, seed: int) -> np.ndarray:
    """uint64 [n] hash of int [n] ``values`` under ``seed`` (the splitmix64 finaliser)."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def unit_interval(values: np.ndarray, seed: int) -> np.ndarray:
    """float64 [n] in [0, 1): a uniform draw per value, fixed by (value, seed)."""
    return (splitmix64(values, seed) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class BottomK:
    """The ``capacity`` ids with the smallest keys among all ids offered so far."""

    def __init__(self, capacity: int, seed: int) -> None:
        self.capacity = capacity
        self.seed = seed
        self._ids = np.empty(0, dtype=np.int64)
        self._keys = np.empty(0, dtype=np.uint64)

    def offer(self, ids: np.ndarray) -> None:
        """Consider int64 [n] ``ids`` (each id at most once over all calls)."""
        if self.capacity <= 0 or ids.size == 0:
            return
        ids = np.concatenate([self._ids, ids.astype(np.int64)])
        keys = np.concatenate([self._keys, splitmix64(ids[self._ids.size :], self.seed)])
        if ids.size > self.capacity:
            keep = np.argpartition(keys, self.capacity - 1)[: self.capacity]
            ids, keys = ids[keep], keys[keep]
        self._ids, self._keys = ids, keys

    def ids(self) -> np.ndarray:
        """int64 [<= capacity], ordered by key (so a prefix is a smaller bottom-k sample)."""
        order = np.argsort(self._keys, kind="stable")
        return self._ids[order]
