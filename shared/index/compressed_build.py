"""Building the compressed tier (``ivfpq``) in bounded memory, from a stream of pages.

Three passes, none holding more than a page or a chunk of vectors in RAM:

1. *load*: pages of database rows (keyset-paged, :func:`shared.index.catchup.stream_space`)
   go to the vector file (float16) and the metadata table;
2. *train*: the coarse quantiser and the PQ codebooks learn from a random sample of the
   vectors (read back from the file), at most :data:`TRAIN_POINTS_PER_LIST` per list;
3. *add*: 200 random objects are held out, the others are encoded chunk by chunk from the
   file, ``nprobe`` is tuned on the held-out ones against their exact neighbours (a scan of
   the file), then they are added too.

Peak memory beyond the finished index: the training sample (``points × D × 4`` bytes: 160 MB
at 1M objects of 256-d, 650 MB at 10M) and one chunk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import numpy as np

from shared.index.cursor import Cursor
from shared.index.policy import IndexPlan
from shared.index.rows import ObjectRows
from shared.index.space_index import MIN_TUNING_ROWS, SpaceIndex
from shared.index.tuning import TUNING_K, TUNING_QUERIES
from shared.index.vector_store import VectorStore

log = logging.getLogger(__name__)

# Progress callback: (phase, done, total) with phase "load", "train" or "add".
Progress = Callable[[str, int, int], None]

TRAIN_POINTS_PER_LIST = 40
MIN_TRAIN_POINTS = 10_000
ADD_CHUNK = 65_536


def _quiet(phase: str, done: int, total: int) -> None:
    del phase, done, total


def load_pages(
    space: SpaceIndex, pages: Iterable[ObjectRows], total: int, progress: Progress = _quiet
) -> np.ndarray:
    """Pass 1: pages into ``space``'s vector file and metadata (not the FAISS index yet).

    ``total``: the expected row count (for progress only). Returns every id read, rejected
    ones included (int64, ascending: the pages come in id order).
    """
    store = space.store
    assert store is not None
    read: list[np.ndarray] = []
    done = 0
    for part in pages:
        store.write(part.ids, part.vectors)
        space.table.put(part)
        space.rejected.update(part.rejected)
        read.append(part.ids)
        read.append(np.fromiter(part.rejected, np.int64, len(part.rejected)))
        done += len(part) + len(part.rejected)
        progress("load", done, total)
    return np.sort(np.concatenate(read)) if read else np.zeros(0, np.int64)


def train_and_add(space: SpaceIndex, *, seed: int = 0, progress: Progress = _quiet) -> None:
    """Passes 2 and 3: train on a sample, add everything, tune ``nprobe`` (see the module)."""
    store, ivf = space.store, space.ivf
    assert store is not None and ivf is not None
    ids = space.table.live_ids()
    n = ids.size
    space.plan.built_for = n
    rng = np.random.default_rng(seed)
    if n < ivf.nlist:
        raise ValueError(
            f"{space.plan.factory!r} needs at least {ivf.nlist} vectors to train, "
            f"space {space.space_id} has {n}"
        )
    wanted = max(MIN_TRAIN_POINTS, TRAIN_POINTS_PER_LIST * int(ivf.nlist))
    sample = np.sort(rng.choice(n, size=min(wanted, n), replace=False))
    progress("train", 0, 1)
    space.index.train(store.read(ids[sample]))
    progress("train", 1, 1)
    tunable = n >= MIN_TUNING_ROWS
    held = np.sort(rng.choice(n, size=TUNING_QUERIES, replace=False)) if tunable else None
    keep = np.ones(n, bool)
    if held is not None:
        keep[held] = False
    _add(space, ids[keep], progress, n)
    if held is None:
        space.plan.params["nprobe"] = int(ivf.nlist)
    else:
        queries = store.read(ids[held])
        mask = space.table.columns["live"].copy()
        mask[ids[held] - space.table.base] = False
        truth = space._search_exact_reconstruct(queries, TUNING_K, mask).ids
        space.tune_on(queries, truth)
        _add(space, ids[held], progress, n)
    space.dirty = True


def _add(space: SpaceIndex, ids: np.ndarray, progress: Progress, total: int) -> None:
    assert space.store is not None
    for start in range(0, ids.size, ADD_CHUNK):
        chunk = np.ascontiguousarray(ids[start : start + ADD_CHUNK])
        space.index.add_with_ids(space.store.read(chunk), chunk)
        progress("add", int(space.index.ntotal), total)


def build_compressed(
    space_id: int,
    space_key: str,
    dim: int,
    plan: IndexPlan,
    store: VectorStore,
    rows: ObjectRows,
    cursor: Cursor,
    *,
    seed: int = 0,
) -> SpaceIndex:
    """The compressed tier from rows already in memory (tests, benches): the same passes."""
    space = SpaceIndex.empty(space_id, space_key, dim, plan, cursor=cursor, store=store)
    load_pages(space, [rows], len(rows))
    train_and_add(space, seed=seed)
    return space
