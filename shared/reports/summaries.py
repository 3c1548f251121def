"""Per-cluster and overall statistics, accumulated batch by batch in bounded memory.

For each cluster: size, cohesion (mean cosine similarity of its objects to its centre, and the
lowest), exemplars (the objects nearest the centre), outliers (the farthest), class histogram,
and the ingestions its objects come from. Overall: objects, clusters, noise, class purity
(the share of objects whose class is the majority class of their cluster) beside its chance
baseline (the share of the most common class: what one cluster, or clusters unrelated to the
classes, would score), and the mean cohesion.

Memory: O(clusters x (exemplars + outliers + classes + ingestions)), whatever the number of
objects.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from shared.reports.selection import ObjectBatch


class TopPerLabel:
    """The ``capacity`` rows with the highest (or lowest) score for each label.

    Rows carry int64 ``ids``, ``image_ids``, ``class_ids`` and float32 ``scores``.
    """

    def __init__(self, capacity: int, *, largest: bool) -> None:
        self.capacity = capacity
        self.largest = largest
        self.labels = np.empty(0, dtype=np.int64)
        self.scores = np.empty(0, dtype=np.float32)
        self.ids = np.empty(0, dtype=np.int64)
        self.image_ids = np.empty(0, dtype=np.int64)
        self.class_ids = np.empty(0, dtype=np.int64)

    def offer(
        self,
        labels: np.ndarray,
        scores: np.ndarray,
        ids: np.ndarray,
        image_ids: np.ndarray,
        class_ids: np.ndarray,
    ) -> None:
        if self.capacity <= 0 or labels.size == 0:
            return
        labels = np.concatenate([self.labels, labels.astype(np.int64)])
        scores = np.concatenate([self.scores, scores.astype(np.float32)])
        ids = np.concatenate([self.ids, ids.astype(np.int64)])
        image_ids = np.concatenate([self.image_ids, image_ids.astype(np.int64)])
        class_ids = np.concatenate([self.class_ids, class_ids.astype(np.int64)])
        key = -scores if self.largest else scores
        order = np.lexsort((ids, key, labels))  # by label, then best score, then id
        sorted_labels = labels[order]
        starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
        group_start = np.repeat(starts, np.diff(np.r_[starts, sorted_labels.size]))
        keep = order[np.arange(order.size) - group_start < self.capacity]
        self.labels, self.scores, self.ids = labels[keep], scores[keep], ids[keep]
        self.image_ids, self.class_ids = image_ids[keep], class_ids[keep]

    def rows_of(self, label: int) -> list[tuple[int, int, int, float]]:
        """(object id, image id, class id, score) of one label, best first."""
        mine = np.flatnonzero(self.labels == label)
        key = -self.scores[mine] if self.largest else self.scores[mine]
        mine = mine[np.lexsort((self.ids[mine], key))]
        return [
            (
                int(self.ids[i]),
                int(self.image_ids[i]),
                int(self.class_ids[i]),
                float(self.scores[i]),
            )
            for i in mine
        ]


class ClusterAccumulator:
    """Feed every assigned batch through :meth:`update`; read :meth:`clusters`/:meth:`overall`."""

    def __init__(self, n_clusters: int, *, exemplars: int, outliers: int) -> None:
        self.n = n_clusters
        self.sizes = np.zeros(n_clusters, dtype=np.int64)
        self.sim_sum = np.zeros(n_clusters, dtype=np.float64)
        self.sim_min = np.full(n_clusters, np.inf, dtype=np.float64)
        self.noise = 0
        self.classes: list[Counter[int]] = [Counter() for _ in range(n_clusters)]
        self.noise_classes: Counter[int] = Counter()
        self.ingestions: list[Counter[int]] = [Counter() for _ in range(n_clusters)]
        self.exemplars = TopPerLabel(exemplars, largest=True)
        self.outliers = TopPerLabel(outliers, largest=False)

    def update(
        self,
        batch: ObjectBatch,
        labels: np.ndarray,
        sims: np.ndarray,
        ingestions_of: dict[int, list[int]],
    ) -> None:
        """``labels`` int64 [n] (-1 noise), ``sims`` float32 [n] similarity to the centre."""
        assigned = labels >= 0
        self.noise += int((~assigned).sum())
        self.noise_classes.update(batch.class_ids[~assigned].tolist())
        lab = labels[assigned]
        sim = sims[assigned].astype(np.float64)
        self.sizes += np.bincount(lab, minlength=self.n)
        self.sim_sum += np.bincount(lab, weights=sim, minlength=self.n)
        np.minimum.at(self.sim_min, lab, sim)
        pairs, counts = np.unique(
            np.stack([lab, batch.class_ids[assigned].astype(np.int64)]), axis=1, return_counts=True
        )
        for (label, class_id), count in zip(pairs.T.tolist(), counts.tolist(), strict=True):
            self.classes[label][class_id] += count
        for label, image_id in zip(lab.tolist(), batch.image_ids[assigned].tolist(), strict=True):
            for ingestion_id in ingestions_of.get(image_id, ()):
                self.ingestions[label][ingestion_id] += 1
        args = (
            lab,
            sims[assigned],
            batch.ids[assigned],
            batch.image_ids[assigned],
            batch.class_ids[assigned],
        )
        self.exemplars.offer(*args)
        self.outliers.offer(*args)

    def cohesion(self) -> np.ndarray:
        return np.where(self.sizes > 0, self.sim_sum / np.maximum(self.sizes, 1), 0.0)

    def clusters(self, class_name: Callable[[int], str]) -> list[dict[str, Any]]:
        """One JSON-ready dict per cluster, in label order."""
        total = max(int(self.sizes.sum()) + self.noise, 1)
        cohesion = self.cohesion()
        out = []

        def objects(rows: list[tuple[int, int, int, float]]) -> list[dict[str, Any]]:
            return [
                {
                    "object_id": object_id,
                    "image_id": image_id,
                    "class_name": class_name(class_id),
                    "similarity": round(score, 6),
                }
                for object_id, image_id, class_id, score in rows
            ]

        for label in range(self.n):
            size = int(self.sizes[label])
            out.append(
                {
                    "id": label,
                    "size": size,
                    "share": round(size / total, 6),
                    "cohesion": round(float(cohesion[label]), 6),
                    "min_similarity": round(float(self.sim_min[label]), 6) if size else None,
                    "exemplars": objects(self.exemplars.rows_of(label)),
                    "outliers": objects(self.outliers.rows_of(label)),
                    "classes": [
                        {"class_name": class_name(c), "class_id": c, "count": n}
                        for c, n in sorted(self.classes[label].items(), key=lambda t: (-t[1], t[0]))
                    ],
                    "ingestions": [
                        {"ingestion_id": i, "count": n}
                        for i, n in sorted(
                            self.ingestions[label].items(), key=lambda t: (-t[1], t[0])
                        )
                    ],
                }
            )
        return out

    def overall(self) -> dict[str, Any]:
        assigned = int(self.sizes.sum())
        totals: Counter[int] = Counter()
        for counter in self.classes:
            totals.update(counter)
        majority = sum(max(c.values()) for c in self.classes if c)
        return {
            "objects": assigned + self.noise,
            "assigned": assigned,
            "noise": self.noise,
            "clusters": int((self.sizes > 0).sum()),
            "purity": round(majority / assigned, 6) if assigned else None,
            "purity_baseline": round(max(totals.values()) / assigned, 6) if assigned else None,
            "mean_cohesion": round(float(self.sim_sum.sum() / assigned), 6) if assigned else None,
            "classes": len(totals),
        }
