"""Filtered search stays exact-k and correct when the filter is selective, on every index
type (the filter is applied inside FAISS, with exact fallbacks, never by dropping hits)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.index.cursor import Cursor
from shared.index.filters import allowed_images, candidate_mask, id_selector
from shared.index.metadata import ObjectTable
from shared.index.policy import IndexPlan
from shared.index.rows import ObjectRows
from shared.index.search_filter import SearchFilter
from shared.index.space_index import SpaceIndex
from tests.factories import boxes_of, clustered

DIM = 32
N = 8000
PLANS = [
    IndexPlan("flat", "Flat"),
    IndexPlan("hnsw", "HNSW16", params={"efConstruction": 40}),
    IndexPlan("ivf", "IVF64,Flat"),
]


def collection(seed: int = 0) -> ObjectRows:
    rng = np.random.default_rng(seed)
    x = clustered(N, DIM, clusters=40, seed=seed)
    classes = rng.integers(0, 3, size=N).astype(np.int32)
    classes[rng.choice(N, size=15, replace=False)] = 7  # a rare class: 15 objects
    scores = rng.uniform(0, 1, N).astype(np.float32)
    sides = rng.uniform(5, 100, N).astype(np.float32)
    return ObjectRows(
        ids=np.arange(10, 10 + N, dtype=np.int64) * 3,  # sparse ids, like a shared sequence
        image_ids=np.arange(N, dtype=np.int64) // 4,
        class_ids=classes,
        scores=scores,
        sides=sides,
        **boxes_of(sides),
        vectors=x,
    )


def exact_filtered(rows: ObjectRows, keep: np.ndarray, q: np.ndarray, k: int) -> list[list[int]]:
    scores = q @ rows.vectors[keep].T
    ids = rows.ids[keep]
    order = np.argsort(-scores, axis=1)[:, :k]
    return [[int(i) for i in ids[row]] for row in order]


@pytest.fixture(scope="module", params=PLANS, ids=lambda p: p.kind)
def built(request: pytest.FixtureRequest) -> tuple[SpaceIndex, ObjectRows]:
    rows = collection()
    return SpaceIndex.build(1, "k", DIM, request.param, rows, Cursor()), rows


def test_selective_filter_returns_exactly_the_k_best_matches(
    built: tuple[SpaceIndex, ObjectRows],
) -> None:
    space, rows = built
    q = clustered(20, DIM, clusters=40, seed=0)[:20] + 0.0
    flt = SearchFilter(class_ids=[7])
    mask = candidate_mask(space.table, flt, None)
    hits = space.search(q, 10, mask, None)
    expected = exact_filtered(rows, rows.class_ids == 7, q, 10)
    assert [[h.object_id for h in row] for row in hits] == expected
    # Fewer matches than k: all of them, nothing else.
    hits = space.search(q, 50, mask, None)
    assert all(len(row) == 15 for row in hits)


def test_moderately_selective_filter_is_exact_k_and_accurate(
    built: tuple[SpaceIndex, ObjectRows],
) -> None:
    space, rows = built
    rng = np.random.default_rng(1)
    q = rows.vectors[rng.choice(N, 30, replace=False)]
    flt = SearchFilter(class_ids=[1], min_score=0.3)  # about a quarter of the collection
    keep = (rows.class_ids == 1) & (rows.scores >= 0.3)
    hits = space.search(q, 10, candidate_mask(space.table, flt, None), None)
    expected = exact_filtered(rows, keep, q, 10)
    allowed = set(rows.ids[keep].tolist())
    recall = []
    for row, truth in zip(hits, expected, strict=True):
        got = [h.object_id for h in row]
        assert len(got) == 10 and set(got) <= allowed
        recall.append(len(set(got) & set(truth)) / 10)
    assert np.mean(recall) >= 0.95


def test_box_side_image_and_exclusion_filters(built: tuple[SpaceIndex, ObjectRows]) -> None:
    space, rows = built
    q = rows.vectors[:3]
    images = allowed_images(SearchFilter(image_ids=[5, 6, 100_000]), None)
    flt = SearchFilter(
        image_ids=[5, 6, 100_000], min_box_side=0.0, exclude_object_ids=[int(rows.ids[20])]
    )
    hits = space.search(q, 10, candidate_mask(space.table, flt, images), None)
    expected = set(rows.ids[(rows.image_ids == 5) | (rows.image_ids == 6)].tolist()) - {
        int(rows.ids[20])
    }
    assert all({h.object_id for h in row} == expected for row in hits)
    big = SearchFilter(min_box_side=95.0)
    hits = space.search(q, 10, candidate_mask(space.table, big, None), None)
    sides = dict(zip(rows.ids.tolist(), rows.sides.tolist(), strict=True))
    assert all(len(row) == 10 and all(sides[h.object_id] >= 95.0 for h in row) for row in hits)


def test_min_similarity_cuts_the_list() -> None:
    rows = collection(2)
    space = SpaceIndex.build(1, "k", DIM, IndexPlan("flat", "Flat"), rows, Cursor())
    hits = space.search(rows.vectors[:1], N, None, 0.97)[0]
    similar = rows.ids[rows.vectors @ rows.vectors[0] >= 0.97]
    assert 1 < len(hits) < 1000
    assert sorted(h.object_id for h in hits) == sorted(similar.tolist())


def test_ingestion_filter_intersects_with_image_filter() -> None:
    flt = SearchFilter(image_ids=[1, 2, 3], ingestion_ids=[9])
    both = allowed_images(flt, np.asarray([3, 4, 3]))
    assert both is not None and both.tolist() == [3]
    none_found = allowed_images(SearchFilter(ingestion_ids=[9]), None)
    assert none_found is not None and none_found.tolist() == []
    assert allowed_images(SearchFilter(min_score=0.1), None) is None


def test_selectors_accept_exactly_the_mask() -> None:
    table = ObjectTable()
    ids = np.asarray([1000, 1003, 1010, 5000], np.int64)
    rows = ObjectRows(
        ids=ids,
        image_ids=np.zeros(4, np.int64),
        class_ids=np.zeros(4, np.int32),
        scores=np.zeros(4, np.float32),
        sides=np.zeros(4, np.float32),
        **boxes_of(np.zeros(4)),
        vectors=np.zeros((4, 2), np.float32),
    )
    table.put(rows)
    for chosen in ([1003], [1000, 1003, 1010, 5000]):
        mask = np.zeros(table.capacity, bool)
        mask[np.asarray(chosen) - table.base] = True
        selector = id_selector(table, mask)
        # The faiss stubs declare IDSelector empty; the SWIG class has is_member.
        is_member = selector.sel.is_member  # type: ignore[attr-defined]
        members = [i for i in range(990, 5010) if is_member(i)]
        assert members == chosen
