"""Per-cluster statistics accumulated over batches."""

from __future__ import annotations

import numpy as np

from shared.reports.selection import ObjectBatch
from shared.reports.summaries import ClusterAccumulator, TopPerLabel


def batch(ids: list[int], classes: list[int], images: list[int]) -> ObjectBatch:
    n = len(ids)
    return ObjectBatch(
        ids=np.array(ids, dtype=np.int64),
        image_ids=np.array(images, dtype=np.int64),
        class_ids=np.array(classes, dtype=np.int32),
        class_names=[f"c{c}" for c in classes],
        scores=np.ones(n),
        boxes=np.zeros((n, 4)),
    )


def test_top_per_label_over_batches() -> None:
    top = TopPerLabel(2, largest=True)
    low = TopPerLabel(1, largest=False)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    scores = rng.random(200).astype(np.float32)
    ids = np.arange(200)
    for part in np.array_split(np.arange(200), 9):
        args = (labels[part], scores[part], ids[part], ids[part] + 1000, labels[part])
        top.offer(*args)
        low.offer(*args)
    for label in range(3):
        mine = np.flatnonzero(labels == label)
        best = mine[np.argsort(-scores[mine])][:2]
        assert [r[0] for r in top.rows_of(label)] == best.tolist()
        assert top.rows_of(label)[0][1] == best[0] + 1000
        assert [r[0] for r in low.rows_of(label)] == [int(mine[np.argmin(scores[mine])])]


def test_accumulator_sizes_classes_purity_and_noise() -> None:
    acc = ClusterAccumulator(2, exemplars=2, outliers=1)
    first = batch([1, 2, 3, 4], [0, 0, 1, 1], [10, 10, 11, 12])
    acc.update(
        first,
        np.array([0, 0, 1, -1]),
        np.array([0.9, 0.8, 0.7, 0.1], np.float32),
        {10: [5], 11: [5, 6]},
    )
    second = batch([5, 6], [0, 1], [13, 13])
    acc.update(second, np.array([1, 1]), np.array([0.95, 0.5], np.float32), {13: [6]})
    clusters = acc.clusters(lambda c: f"c{c}")
    assert [c["size"] for c in clusters] == [2, 3]
    assert clusters[0]["classes"] == [{"class_name": "c0", "class_id": 0, "count": 2}]
    assert clusters[1]["classes"][0] == {"class_name": "c1", "class_id": 1, "count": 2}
    assert [e["object_id"] for e in clusters[1]["exemplars"]] == [5, 3]
    assert [o["object_id"] for o in clusters[1]["outliers"]] == [6]
    assert clusters[0]["ingestions"] == [{"ingestion_id": 5, "count": 2}]
    assert clusters[1]["ingestions"] == [
        {"ingestion_id": 6, "count": 3},
        {"ingestion_id": 5, "count": 1},
    ]
    assert abs(clusters[1]["cohesion"] - (0.7 + 0.95 + 0.5) / 3) < 1e-6
    overall = acc.overall()
    assert overall["objects"] == 6 and overall["noise"] == 1 and overall["assigned"] == 5
    assert overall["purity"] == round(4 / 5, 6)
    assert overall["purity_baseline"] == round(3 / 5, 6)
