"""Index choice by size, factory overrides, rebuild triggers, and recall@10 ≥ 0.95 for each
automatically chosen index type on a clustered synthetic set."""

from __future__ import annotations

import numpy as np
import pytest

from shared.index.cursor import Cursor
from shared.index.policy import IndexPlan, IndexPolicy, ivf_lists, kind_of_factory, pq_bytes
from shared.index.rows import ObjectRows
from shared.index.space_index import SpaceIndex
from shared.index.tuning import exact_neighbours, recall_at_k
from tests.factories import boxes_of, clustered


def test_default_thresholds_follow_vectors_times_dimension() -> None:
    policy = IndexPolicy()
    assert policy.choose(19_999, 256).kind == "flat"
    assert policy.choose(20_000, 256).factory == "IVF512,Flat"
    assert policy.choose(100_000, 256).factory == "IVF1024,Flat"
    assert policy.choose(4_999, 1024).kind == "flat"
    assert policy.choose(6_000, 1024).kind == "ivf"
    assert policy.choose(1_000_000, 256).factory == "IVF4096,Flat"
    assert ivf_lists(100) == 2 and ivf_lists(10) == 1


def test_factory_override_wins_and_is_classified() -> None:
    policy = IndexPolicy()
    plan = policy.choose(10, 64, "IVF256,SQ8")
    assert plan.override and plan.kind == "ivf" and plan.factory == "IVF256,SQ8"
    hnsw = policy.choose(10, 64, "HNSW32")
    assert hnsw.kind == "hnsw" and hnsw.params == {"efConstruction": 100}
    assert kind_of_factory("HNSW32,SQ8", 64) == "hnsw"
    assert kind_of_factory("Flat", 64) == "flat"
    assert kind_of_factory("PQ8", 64) == "custom"
    with pytest.raises(ValueError, match="invalid FAISS factory string 'Bogus9'"):
        policy.choose(10, 64, "Bogus9")


def test_rebuild_reasons() -> None:
    policy = IndexPolicy(flat_max_work=1000 * 8)
    flat = IndexPlan("flat", "Flat", built_for=0)
    assert policy.rebuild_reason(flat, 500, 0, 8, None) is None
    assert "IVF" in (policy.rebuild_reason(flat, 1500, 0, 8, None) or "")
    ivf = IndexPlan("ivf", "IVF32,Flat", built_for=2000)
    assert policy.rebuild_reason(ivf, 900, 0, 8, None) is None  # hysteresis
    assert "no longer" in (policy.rebuild_reason(ivf, 400, 0, 8, None) or "")
    assert "grew" in (policy.rebuild_reason(ivf, 9000, 0, 8, None) or "")
    assert "override" in (policy.rebuild_reason(ivf, 2000, 0, 8, "Flat") or "")
    hnsw = IndexPlan("hnsw", "HNSW32", built_for=2000, override=True)
    assert policy.rebuild_reason(hnsw, 2000, 0, 8, "HNSW32") is None
    assert "deleted" in (policy.rebuild_reason(hnsw, 2000, 1000, 8, "HNSW32") or "")
    assert "removed" in (policy.rebuild_reason(hnsw, 2000, 0, 8, None) or "")


def _rows(x: np.ndarray) -> ObjectRows:
    n = x.shape[0]
    return ObjectRows(
        ids=np.arange(1, n + 1, dtype=np.int64),
        image_ids=np.zeros(n, np.int64),
        class_ids=np.zeros(n, np.int32),
        scores=np.ones(n, np.float32),
        sides=np.ones(n, np.float32),
        **boxes_of(np.ones(n)),
        vectors=x,
    )


@pytest.mark.parametrize(
    ("n", "override", "kind"),
    [(1_500, None, "flat"), (30_000, None, "ivf"), (6_000, "HNSW32", "hnsw")],
)
def test_each_automatic_type_reaches_recall_095(n: int, override: str | None, kind: str) -> None:
    """Flat and IVF are the automatic types; HNSW (an override) is held to the same bar."""
    dim = 32
    policy = IndexPolicy(flat_max_work=2_000 * dim)  # scaled down to test-sized collections
    data = clustered(n + 300, dim, clusters=64, spread=0.6, seed=3)
    base, queries = data[:n], data[n:]  # held-out queries: not used by the tuner
    plan = policy.choose(n, dim, override)
    assert plan.kind == kind
    space = SpaceIndex.build(1, "k", dim, plan, _rows(base), Cursor())
    found = np.full((queries.shape[0], 10), -1, np.int64)
    for i, row in enumerate(space.search(queries, 10, None, None)):
        found[i, : len(row)] = [h.object_id for h in row]
    exact = exact_neighbours(base, np.arange(1, n + 1, dtype=np.int64), queries, 10)
    recall = recall_at_k(found, exact, 10, np.full(queries.shape[0], -1))
    assert recall >= 0.95, (kind, recall, space.plan.params)


def test_memory_budget_chooses_the_compressed_tier() -> None:
    mib = 1024 * 1024
    policy = IndexPolicy(memory_budget_bytes=2048 * mib)
    # IVF-Flat at d=256 needs 1,048 B per object: 2 GiB holds about 2M objects.
    assert policy.choose(1_000_000, 256).factory == "IVF4096,Flat"
    compressed = policy.choose(3_000_000, 256)
    assert compressed.kind == "ivfpq" and compressed.factory == "IVF8192,PQ64x8"
    assert policy.choose(10_000_000, 256).factory == "IVF16384,PQ64x8"
    assert pq_bytes(256) == 64 and pq_bytes(224) == 56 and pq_bytes(128) == 32
    assert pq_bytes(16) == 4 and pq_bytes(6) == 1
    # Never below what PQ's codebooks can train on, whatever the budget.
    tiny = IndexPolicy(flat_max_work=0, memory_budget_bytes=1)
    assert tiny.choose(255, 16).kind == "ivf" and tiny.choose(256, 16).kind == "ivfpq"
    assert IndexPlan.from_json(compressed.to_json()) == compressed


def test_rebuild_reasons_of_the_budget() -> None:
    budget = IndexPolicy(flat_max_work=1000 * 8, memory_budget_bytes=200_000)  # 3,571 at d=8
    ivf = IndexPlan("ivf", "IVF32,Flat", built_for=3000)
    assert "budget" in (budget.rebuild_reason(ivf, 4000, 0, 8, None) or "")
    assert budget.rebuild_reason(ivf, 3500, 0, 8, None) is None
    compressed = IndexPlan("ivfpq", "IVF64,PQ2x8", built_for=4000)
    assert budget.rebuild_reason(compressed, 4000, 0, 8, None) is None
    assert budget.rebuild_reason(compressed, 2000, 0, 8, None) is None  # hysteresis
    assert "fit the memory budget" in (budget.rebuild_reason(compressed, 1500, 0, 8, None) or "")
    assert "grew" in (budget.rebuild_reason(compressed, 20_000, 0, 8, None) or "")
    assert "no longer" in (budget.rebuild_reason(compressed, 900, 0, 8, None) or "")
    unlimited = IndexPolicy(flat_max_work=1000 * 8)
    assert "fit" in (unlimited.rebuild_reason(compressed, 4000, 0, 8, None) or "")
