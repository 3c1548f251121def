"""Search-parameter tuning and recall measurement against exact search.

Array contract: ``base`` float32 ``[n, D]`` and ``queries`` float32 ``[q, D]``, L2-normalised;
ids are int64. Recall@k is ``|approx ∩ exact| / k`` averaged over queries, where a query that
is itself in the collection does not count itself (the service's "similar objects" case).
"""

from __future__ import annotations

from collections.abc import Callable

import faiss
import numpy as np

NPROBE_STEPS = (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
EF_STEPS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
TUNING_QUERIES = 200
TUNING_K = 10


def exact_neighbours(
    base: np.ndarray, base_ids: np.ndarray, queries: np.ndarray, k: int
) -> np.ndarray:
    """Exact top-``k`` ids by inner product: int64 ``[q, k]`` (-1 where fewer exist)."""
    scores, positions = faiss.knn(queries, base, min(k, base.shape[0]), faiss.METRIC_INNER_PRODUCT)
    del scores
    out = np.full((queries.shape[0], k), -1, np.int64)
    found = np.where(positions >= 0, base_ids[np.maximum(positions, 0)], -1)
    out[:, : found.shape[1]] = found
    return out


def recall_at_k(approx: np.ndarray, exact: np.ndarray, k: int, self_ids: np.ndarray) -> float:
    """Mean recall@k of ``approx`` against ``exact`` (both int64 ``[q, ≥k+1]``), ignoring
    each query's own id ``self_ids[i]`` (-1 for queries not in the collection)."""
    total = 0.0
    for row in range(exact.shape[0]):
        own = int(self_ids[row])
        truth = [i for i in exact[row] if i != own and i >= 0][:k]
        if not truth:
            total += 1.0
            continue
        got_k = [i for i in approx[row] if i != own and i >= 0][:k]
        got = {int(i) for i in got_k}
        total += len(got & {int(i) for i in truth}) / len(truth)
    return total / max(exact.shape[0], 1)


def tune(
    search: Callable[[np.ndarray, int, int], np.ndarray],
    steps: tuple[int, ...],
    queries: np.ndarray,
    exact: np.ndarray,
    self_ids: np.ndarray,
    target: float,
    limit: int,
) -> tuple[int, float]:
    """Smallest parameter in ``steps`` (≤ ``limit``) whose recall@10 reaches ``target``.

    ``search(queries, k, param)`` returns int64 ids ``[q, k]``. Returns ``(param, recall)``;
    the largest allowed step when none reaches the target.
    """
    allowed = [s for s in steps if s <= limit] or [limit]
    best = (allowed[-1], 0.0)
    for step in allowed:
        found = search(queries, TUNING_K + 1, step)
        recall = recall_at_k(found, exact, TUNING_K, self_ids)
        best = (step, recall)
        if recall >= target:
            return best
    return best
