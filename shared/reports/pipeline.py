"""The cluster report, computed in two streaming passes over the selected objects.

1. **Keys pass** (ids and classes only): bottom-k samples by id hash, per group (a class with
   ``per_class``, else everything), plus the sample shown on the 2-D map.
2. **Fit**: the sampled vectors are fetched and clustered per group (k-means with given or
   automatic k, or the density method).
3. **Assignment pass** (vectors, ``batch_size`` at a time): every object is assigned to the
   nearest centre of its group; statistics, exemplars/outliers, the assignments files and the
   near-duplicate store are fed batch by batch.
4. Near-duplicate groups, the PCA map, the HTML page.

Memory is bounded by the training sample (``sample_size`` x dim floats), one batch, and per
cluster a few exemplars, never by the number of objects; near-duplicate vectors go to a memory
map on disk (see :mod:`shared.reports.duplicates`).
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from shared.db.database import Database
from shared.reports.assignments import ASSIGNMENTS_CSV, ASSIGNMENTS_PARQUET, AssignmentWriter
from shared.reports.clustering import (
    GroupModel,
    fit_density_group,
    fit_kmeans_group,
    silhouette_cosine,
)
from shared.reports.duplicates import DuplicateFinder
from shared.reports.errors import ReportError
from shared.reports.html import objects_to_crop, render_report_html
from shared.reports.params import ClusterMethod, ClusterParams
from shared.reports.projection import fit_pca
from shared.reports.sampling import BottomK
from shared.reports.selection import (
    DEFAULT_BATCH,
    ObjectBatch,
    Selection,
    class_counts,
    fetch_objects,
    ingestions_of,
    iter_batches,
    iter_keys,
    resolve_selection,
)
from shared.reports.summaries import ClusterAccumulator
from shared.reports.thumbnails import crop_data_uris
from shared.settings import Settings

REPORT_HTML = "report.html"
# Per class at least this many training objects (or all of the class) with per_class.
MIN_CLASS_SAMPLE = 2_000

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Plan:
    """A checked request: the frozen selection and its objects per class."""

    selection: Selection
    counts: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def plan_report(session: Session, params: ClusterParams) -> Plan:
    """Resolve and check the request against the data; raises :class:`ReportError`.

    Errors: unknown space/class/ingestion, ``empty_selection``, ``k_too_large`` (more clusters
    than selected objects).
    """
    selection = resolve_selection(
        session,
        space_id=params.space_id,
        classes=params.classes,
        ingestions=params.ingestions,
        min_score=params.min_score,
        origin=None if params.origin is None else params.origin.value,
        label_classes=params.label_classes,
    )
    counts = class_counts(session, selection)
    plan = Plan(selection=selection, counts=counts)
    if plan.total == 0:
        raise ReportError(
            "empty_selection",
            "no object matches the selection " + _describe(selection),
            selection.describe(),
        )
    if params.k is not None and params.k > plan.total:
        raise ReportError(
            "k_too_large",
            f"k={params.k} clusters asked for, but the selection has only {plan.total} objects",
            {"k": params.k, "objects": plan.total},
        )
    return plan


def _describe(selection: Selection) -> str:
    parts = [f"space {selection.space_id}"]
    described = selection.describe()
    if described["classes"] is not None:
        parts.append(f"classes {', '.join(described['classes'])}")
    if selection.ingestion_ids:
        parts.append(f"ingestions {', '.join(map(str, selection.ingestion_ids))}")
    if selection.min_score is not None:
        parts.append(f"min_score {selection.min_score}")
    return "(" + "; ".join(parts) + ")"


def _quotas(params: ClusterParams, plan: Plan) -> dict[int | None, int]:
    if not params.per_class:
        return {None: min(params.sample_size, plan.total)}
    return {
        c: min(n, max(math.ceil(params.sample_size * n / plan.total), MIN_CLASS_SAMPLE))
        for c, n in sorted(plan.counts.items())
    }


class _Stages:
    """Maps stage-local progress in [0, 1] onto the report's overall progress."""

    def __init__(self, report: Progress) -> None:
        self.report = report
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()
        self._name = ""
        self._span = (0.0, 0.0)

    def begin(self, name: str, start: float, end: float) -> None:
        now = time.perf_counter()
        if self._name:
            self.timings[self._name] = round(now - self._start, 3)
        self._name, self._span, self._start = name, (start, end), now
        self.report(start, name)

    def at(self, fraction: float) -> None:
        start, end = self._span
        self.report(start + (end - start) * min(max(fraction, 0.0), 1.0), self._name)

    def finish(self) -> None:
        self.begin("", 1.0, 1.0)


def _assign(
    models: dict[int | None, GroupModel], x: np.ndarray, class_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    labels = np.full(x.shape[0], -1, dtype=np.int64)
    sims = np.zeros(x.shape[0], dtype=np.float32)
    if None in models:
        return models[None].assign(x)
    for group, model in models.items():
        rows = np.flatnonzero(class_ids == group)
        if rows.size:
            labels[rows], sims[rows] = model.assign(x[rows])
    return labels, sims


def _fit(params: ClusterParams, group: int | None, x: np.ndarray, first_label: int) -> GroupModel:
    if params.method == ClusterMethod.density:
        return fit_density_group(
            x,
            group=group,
            first_label=first_label,
            similarity=params.density_similarity,
            min_samples=params.density_min_samples,
        )
    return fit_kmeans_group(
        x,
        group=group,
        first_label=first_label,
        k=params.k,
        k_min=params.k_min,
        k_max=params.k_max,
        seed=params.seed,
        iterations=params.iterations,
    )


def _sample_vectors(db: Database, selection: Selection, sampler: BottomK) -> ObjectBatch:
    return fetch_objects(db, selection, sampler.ids())


def build_cluster_report(
    db: Database,
    settings: Settings,
    report_id: int,
    params: ClusterParams,
    *,
    progress: Progress,
    batch_size: int = DEFAULT_BATCH,
) -> dict[str, Any]:
    """Compute the report, write its files under ``reports_dir/<id>/``; return the result JSON."""
    stages = _Stages(progress)
    stages.begin("select", 0.0, 0.02)
    with db.read() as session:
        plan = plan_report(session, params)
    report_dir = settings.reports_dir / str(report_id)
    work = report_dir / f".work-{uuid.uuid4().hex}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = _compute(db, settings, report_id, params, plan, work, stages, batch_size)
        for name in (REPORT_HTML, ASSIGNMENTS_CSV, ASSIGNMENTS_PARQUET):
            (work / name).replace(report_dir / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _compute(
    db: Database,
    settings: Settings,
    report_id: int,
    params: ClusterParams,
    plan: Plan,
    work: Path,
    stages: _Stages,
    batch_size: int,
) -> dict[str, Any]:
    selection = plan.selection
    total = plan.total

    stages.begin("sample", 0.02, 0.15)
    quotas = _quotas(params, plan)
    samplers = {g: BottomK(q, params.seed) for g, q in quotas.items()}
    map_sampler = BottomK(min(params.map_points, total), params.seed + 1)
    seen = 0
    for ids, classes in iter_keys(db, selection):
        if params.per_class:
            for group, sampler in samplers.items():
                sampler.offer(ids[classes == group])
        else:
            samplers[None].offer(ids)
        map_sampler.offer(ids)
        seen += ids.size
        stages.at(seen / total)

    stages.begin("fit", 0.15, 0.35)
    models: dict[int | None, GroupModel] = {}
    training: list[np.ndarray] = []
    first_label = 0
    for n, (group, sampler) in enumerate(samplers.items()):
        sample = _sample_vectors(db, selection, sampler)
        if len(sample) == 0:
            continue
        assert sample.vectors is not None
        model = _fit(params, group, sample.vectors, first_label)
        models[group] = model
        first_label += model.k
        training.append(sample.vectors[: max(1, params.sample_size // max(len(samplers), 1))])
        stages.at((n + 1) / len(samplers))
    n_clusters = first_label

    stages.begin("assign", 0.35, 0.7)
    accumulator = ClusterAccumulator(
        n_clusters, exemplars=params.exemplars, outliers=params.outliers
    )
    duplicates = (
        DuplicateFinder(
            work / "duplicates",
            capacity=total,
            dim=selection.dim,
            threshold=params.duplicate_similarity,
            sample=np.concatenate(training) if training else np.zeros((0, selection.dim)),
            seed=params.seed,
        )
        if params.duplicate_similarity is not None
        else None
    )
    seen = 0
    with AssignmentWriter(work) as writer:
        for batch in iter_batches(db, selection, batch_size=batch_size):
            assert batch.vectors is not None
            labels, sims = _assign(models, batch.vectors, batch.class_ids)
            with db.read() as session:
                sources = ingestions_of(session, batch.image_ids.tolist())
            accumulator.update(batch, labels, sims, sources)
            writer.write(batch, labels, sims)
            if duplicates is not None:
                duplicates.add(batch.ids, batch.image_ids, batch.vectors)
            seen += len(batch)
            stages.at(seen / total)

    stages.begin("duplicates", 0.7, 0.92)
    duplicate_summary = (
        duplicates.groups(params.max_duplicate_groups, progress=stages.at)
        if duplicates is not None
        else None
    )

    stages.begin("map", 0.92, 0.94)
    map_sample = _sample_vectors(db, selection, map_sampler)
    map_view, silhouette = _map(models, map_sample)

    clusters = accumulator.clusters(selection.class_name)
    group_of_label = {
        model.first_label + i: model.group for model in models.values() for i in range(model.k)
    }
    for cluster in clusters:
        group = group_of_label.get(cluster["id"])
        cluster["group_class"] = _group_name(selection, group)
    overall = accumulator.overall()
    overall["silhouette"] = silhouette
    overall["training_objects"] = sum(m.training_points for m in models.values())
    result: dict[str, Any] = {
        "selection": {**selection.describe(), "objects": total},
        "method": params.method.value,
        "per_class": params.per_class,
        "k": {
            "total": n_clusters,
            "groups": [
                {
                    "class_id": model.group,
                    "class_name": _group_name(selection, model.group),
                    "k": model.k,
                    "first_cluster": model.first_label,
                    "criterion": model.k_choice.criterion,
                    "scores": {str(k): s for k, s in model.k_choice.scores.items()},
                    "training_points": model.training_points,
                }
                for model in models.values()
            ],
        },
        "overall": overall,
        "clusters": clusters,
        "duplicates": duplicate_summary,
        "map": map_view,
        "files": {
            "html": REPORT_HTML,
            "assignments_csv": ASSIGNMENTS_CSV,
            "assignments_parquet": ASSIGNMENTS_PARQUET,
        },
    }

    stages.begin("html", 0.94, 1.0)
    crops = crop_data_uris(db, settings, objects_to_crop(result))
    (work / REPORT_HTML).write_text(render_report_html(report_id, result, crops), "utf-8")
    stages.finish()
    result["timings_s"] = stages.timings
    return result


def _group_name(selection: Selection, group: int | None) -> str | None:
    return None if group is None else selection.class_name(group)


def _map(
    models: dict[int | None, GroupModel], sample: ObjectBatch
) -> tuple[dict[str, Any], float | None]:
    """The PCA map of the map sample with cluster labels and centres; sample silhouette."""
    if len(sample) == 0 or sample.vectors is None:
        return {"method": "pca", "points": [], "centres": [], "explained_variance": [0, 0]}, None
    x = sample.vectors
    labels, _ = _assign(models, x, sample.class_ids)
    projection = fit_pca(x)
    xy = projection.apply(x)
    centres: list[list[float]] = []
    for model in models.values():
        if model.k:
            cxy = projection.apply(model.centroids)
            centres.extend(
                [model.first_label + i, round(float(p[0]), 4), round(float(p[1]), 4)]
                for i, p in enumerate(cxy)
            )
    points = [
        [round(float(p[0]), 4), round(float(p[1]), 4), int(label), int(object_id)]
        for p, label, object_id in zip(xy, labels.tolist(), sample.ids.tolist(), strict=True)
    ]
    assigned = labels >= 0
    silhouette = (
        round(silhouette_cosine(x[assigned], labels[assigned]), 6) if assigned.sum() > 2 else None
    )
    return {
        "method": "pca",
        "explained_variance": list(projection.explained),
        "points": points,
        "centres": centres,
    }, silhouette
