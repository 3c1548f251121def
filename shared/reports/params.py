"""Parameters of a clustering report, validated once and stored with the report row.

The same model is the API's request body (``POST /v1/reports/clusters``), the CLI's options and
what the job reads back from ``Report.params``; bounds that depend on the data (k against the
size of the selection, class names against the space) are checked by
:func:`shared.reports.selection.resolve_selection` and the job.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.db.models import ObjectOrigin
from shared.selection import Selection

MAX_CLUSTERS = 1000
MAX_SAMPLE = 1_000_000
REPORT_KIND_CLUSTERS = "clusters"

# Calibrated on generated collections (docs/reports.md, "Near-duplicates"): candidates from the
# vectors wide enough to keep every planted pair, the pixels decide.
DUPLICATE_SIMILARITY = 0.6
DUPLICATE_MATCH = 0.87
IMAGE_DUPLICATE_SIMILARITY = 0.7

DbId = Annotated[int, Field(ge=1, le=2**62)]


class ClusterMethod(StrEnum):
    kmeans = "kmeans"  # spherical k-means (faiss.Kmeans) on the unit vectors
    density = "density"  # DBSCAN-style on a sample: core points by cosine similarity


class ClusterParams(BaseModel):
    """What to cluster and how. Every field has a default: ``{}`` clusters everything."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"classes": ["car", "person"], "k": None, "per_class": False}
        },
    )

    # --- selection -------------------------------------------------------------------------
    space_id: DbId | None = Field(
        default=None,
        description="Embedding space; may be omitted when only one space holds objects.",
    )
    classes: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Class names or ids (empty: every class).",
    )
    ingestions: list[DbId] = Field(
        default_factory=list, max_length=1000, description="Only objects of these ingestions."
    )
    min_score: float | None = Field(default=None, ge=0.0, le=1.0, description="Detector score")
    origin: ObjectOrigin | None = Field(
        default=None, description="Only detections, or only labelled boxes (annotation files)."
    )
    label_classes: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=list,
        max_length=1000,
        description="Only labelled boxes of these label classes (the datasets' vocabulary).",
    )

    # --- clustering ------------------------------------------------------------------------
    method: ClusterMethod = ClusterMethod.kmeans
    k: int | None = Field(
        default=None,
        ge=2,
        le=MAX_CLUSTERS,
        description="Clusters (per class with per_class). Unset: chosen automatically by the "
        "mean cosine silhouette over k_min..k_max (k-means only).",
    )
    k_min: int = Field(default=2, ge=2, le=MAX_CLUSTERS)
    k_max: int = Field(default=20, ge=2, le=MAX_CLUSTERS)
    per_class: bool = Field(
        default=False, description="Cluster each class on its own instead of across classes."
    )
    sample_size: int = Field(
        default=50_000,
        ge=100,
        le=MAX_SAMPLE,
        description="Objects used to train the clustering (per class at least a few "
        "thousand with per_class); every selected object is then assigned.",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    iterations: int = Field(default=20, ge=1, le=300, description="k-means iterations")
    density_similarity: float = Field(
        default=0.9,
        gt=0.0,
        lt=1.0,
        description="Density method: cosine similarity at which two objects are neighbours.",
    )
    density_min_samples: int = Field(
        default=5, ge=2, le=1000, description="Density method: neighbours that make a core point."
    )

    # --- summaries -------------------------------------------------------------------------
    exemplars: int = Field(default=8, ge=1, le=50, description="Objects nearest each centre")
    outliers: int = Field(default=4, ge=0, le=50, description="Objects farthest from each centre")
    duplicate_similarity: float | None = Field(
        default=DUPLICATE_SIMILARITY,
        gt=0.0,
        le=1.0,
        description="Near-duplicate candidates: objects whose vectors are at least this "
        "similar (null: skip near-duplicates).",
    )
    duplicate_match: float | None = Field(
        default=DUPLICATE_MATCH,
        ge=-1.0,
        le=1.0,
        description="A candidate pair is a near-duplicate when its two crops' mean colours "
        "agree and the crops match at least this well (colour cross-correlation after "
        "alignment, see docs/reports.md); null: "
        "the vectors alone decide (no crop is read).",
    )
    max_duplicate_candidates: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Candidates per object checked on the pixels (its most similar ones).",
    )
    image_duplicate_similarity: float | None = Field(
        default=IMAGE_DUPLICATE_SIMILARITY,
        gt=0.0,
        le=1.0,
        description="Image-level near-duplicate candidates: images whose whole-image vectors "
        "are at least this similar, confirmed on the images with duplicate_match (null: skip).",
    )
    max_duplicate_groups: int = Field(default=50, ge=0, le=10_000)
    map_points: int = Field(default=2000, ge=0, le=20_000, description="Points on the 2-D map")

    def selection(self) -> Selection:
        """The objects to cluster, in the vocabulary of :mod:`shared.selection`."""
        return Selection(
            space_id=self.space_id,
            classes=tuple(self.classes),
            ingestions=tuple(self.ingestions),
            min_score=self.min_score,
            origin=None if self.origin is None else self.origin.value,
            label_classes=tuple(self.label_classes),
        )

    @model_validator(mode="after")
    def _ranges(self) -> ClusterParams:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) must not exceed k_max ({self.k_max})")
        if self.method == ClusterMethod.density and self.k is not None:
            raise ValueError("k does not apply to the density method (it finds the number)")
        return self
