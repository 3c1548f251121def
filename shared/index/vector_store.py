"""float16 copies of one space's vectors in a file beside the snapshots, read memory-mapped.

The compressed index tier keeps only PQ codes in RAM; the exact scores of its top candidates
(re-ranking) and the exact scan of a selective filter's matches read the vectors from here.

File ``<index_dir>/space-<id>.f16``: row ``i`` (``2·D`` bytes, little-endian float16) is the
vector of object id ``i``; rows of ids never written are holes (a sparse file: no disk used).
The file is a cache of the database keyed by object id, so several processes (API replicas,
a rebuild beside the index it replaces) share it: each writes the database's vector of an id,
the same bytes. Only SQLite's reuse of a deleted last id can put a new vector under an id that
another process still indexes with the old one; that process re-reads the id from the database
at its next catch-up (its tombstone and the new row), as after any deletion. Writes go through
``pwrite`` (no dirty mapped pages in the writer's resident memory); reads map the file and copy
only the rows asked for, so a serving process's resident memory holds the rows it touched,
which the kernel may drop at any time (clean file pages).

Array contract: ids int64 ``[n]`` (≥ 0); vectors float32 ``[n, D]`` in and out.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
from pathlib import Path

import numpy as np

SUFFIX = ".f16"
# The file grows in steps of this many rows (sparse, so a step costs no disk).
GROW_ROWS = 65_536


def store_path(index_dir: Path, space_id: int) -> Path:
    return index_dir / f"space-{space_id}{SUFFIX}"


class VectorStore:
    def __init__(self, path: Path, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.dim = dim
        self.row_bytes = 2 * dim
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        self._view = np.zeros((0, dim), "<f2")

    @property
    def rows(self) -> int:
        """Rows the file holds (one past the highest id it can answer for)."""
        return os.fstat(self._fd).st_size // self.row_bytes

    def write(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store ``vectors`` (float32 ``[n, D]``) under ``ids`` (int64 ``[n]``)."""
        ids = np.asarray(ids, np.int64)
        if ids.size == 0:
            return
        if vectors.shape != (ids.size, self.dim):
            raise ValueError(f"vectors of shape {vectors.shape} for {ids.size} ids")
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        data = np.asarray(vectors, np.float32)[order].astype("<f2")
        needed = int(ids[-1]) + 1
        if needed > self.rows:
            os.ftruncate(self._fd, -(-needed // GROW_ROWS) * GROW_ROWS * self.row_bytes)
        # One write per run of consecutive ids (a rebuild's pages are one run each).
        starts = np.flatnonzero(np.diff(ids) != 1) + 1
        for lo, hi in zip([0, *starts.tolist()], [*starts.tolist(), ids.size], strict=True):
            os.pwrite(self._fd, data[lo:hi].tobytes(), int(ids[lo]) * self.row_bytes)

    def read(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of ``ids``: float32 ``[n, D]`` (zeros for ids never written)."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        if ids.size == 0:
            return np.zeros((0, self.dim), np.float32)
        view = self._view
        if int(ids.max()) >= view.shape[0]:
            view = self._remap(int(ids.max()))
        return view[ids].astype(np.float32)

    def _remap(self, highest: int) -> np.ndarray:
        with self._lock:
            rows = self.rows
            if highest >= rows:
                raise KeyError(f"object id {highest} is beyond the vector file {self.path}")
            if self._view.shape[0] < rows:
                mapped = mmap.mmap(self._fd, rows * self.row_bytes, prot=mmap.PROT_READ)
                # The old mapping stays valid until no array refers to it (then it is unmapped).
                self._view = np.frombuffer(mapped, "<f2").reshape(rows, self.dim)
            return self._view

    def rerank(
        self, queries: np.ndarray, candidates: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` of each query's candidates.

        ``queries``: float32 ``[q, D]``; ``candidates``: int64 ``[q, c]`` (-1 = none). Returns
        scores float32 ``[q, k]`` (descending, -inf where none) and ids int64 ``[q, k]``.
        """
        q, c = candidates.shape
        valid = candidates >= 0
        vectors = self.read(np.where(valid, candidates, 0).reshape(-1)).reshape(q, c, self.dim)
        scores = np.einsum("qcd,qd->qc", vectors, queries, optimize=False)
        scores = np.where(valid, scores, -np.inf).astype(np.float32)
        take = min(k, c)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :take]
        out_scores = np.full((q, k), -np.inf, np.float32)
        out_ids = np.full((q, k), -1, np.int64)
        out_scores[:, :take] = np.take_along_axis(scores, order, axis=1)
        picked = np.take_along_axis(candidates, order, axis=1)
        out_ids[:, :take] = np.where(np.isfinite(out_scores[:, :take]), picked, -1)
        return out_scores, out_ids

    def flush(self) -> None:
        """Make every write durable (before a snapshot that relies on them is written)."""
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()
