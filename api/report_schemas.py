"""Response models of the report routes (the request body is
:class:`shared.reports.params.ClusterParams`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Page


class ReportLinks(BaseModel):
    """Where the report's files are (relative to the API root); null until it is done."""

    html: str | None = None
    assignments_csv: str | None = None
    assignments_parquet: str | None = None


class ReportSelection(BaseModel):
    """Which objects the report clusters (empty lists: all)."""

    classes: list[str] = Field(default_factory=list)
    ingestions: list[int] = Field(default_factory=list)
    min_score: float | None = None
    space_id: int | None = None


class ReportSummary(BaseModel):
    """What tells reports apart in a list; ``objects`` and ``clusters`` once it is done."""

    selection: ReportSelection
    method: str
    per_class: bool
    k_requested: int | None = Field(description="k asked for (null: chosen automatically)")
    objects: int | None = Field(default=None, description="Objects clustered")
    clusters: int | None = Field(default=None, description="Clusters found")
    duration_s: float | None = Field(
        default=None, description="From start to finish (so far, while it runs)"
    )


class ReportOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": 3,
                "kind": "clusters",
                "status": "running",
                "progress": 0.42,
                "params": {"k": None, "per_class": False},
                "error_code": None,
                "error_message": None,
                "created_at": "2026-01-01T12:00:00Z",
                "started_at": "2026-01-01T12:00:01Z",
                "finished_at": None,
                "links": {"html": None, "assignments_csv": None, "assignments_parquet": None},
                "result": None,
            }
        }
    )

    id: int
    kind: str
    status: str = Field(description="queued, running, done or failed")
    progress: float = Field(description="0 to 1")
    params: dict[str, Any]
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    links: ReportLinks
    summary: ReportSummary
    result: dict[str, Any] | None = Field(
        default=None,
        description="When done: selection, k (per group, with the auto-k scores), overall "
        "(objects, clusters, noise, purity, purity_baseline, mean_cohesion, silhouette), "
        "clusters (size, cohesion, exemplars, outliers, classes, ingestions), duplicates "
        "(near-duplicate object groups: vector candidates confirmed on the crops), "
        "image_duplicates (near-duplicate image groups), map (PCA points), files. "
        "See docs/reports.md.",
    )


class ReportList(BaseModel):
    page: Page
    reports: list[ReportOut]


class ExportFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"
    npy = "npy"
    npz = "npz"


class SplitPart(StrEnum):
    train = "train"
    val = "val"
    test = "test"
