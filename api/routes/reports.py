"""Clustering reports: start one, follow it, fetch its HTML page and assignment files.

A report runs as a job (RQ, or in-process in embedded mode). The request is checked against
the data before anything is queued, so that bad parameters (unknown class, empty selection,
k larger than the selection, ...) answer 422 at once with the common error body; the job
checks again, since the data may change meanwhile.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from api.dependencies import PageDep, ResourcesDep
from api.report_schemas import (
    ReportLinks,
    ReportList,
    ReportOut,
    ReportSelection,
    ReportSummary,
)
from api.schemas import ErrorResponse, Page
from shared.db.models import Report, ReportStatus
from shared.errors import Unavailable
from shared.reports.assignments import ASSIGNMENTS_CSV, ASSIGNMENTS_PARQUET
from shared.reports.job import create_cluster_report
from shared.reports.params import ClusterParams
from shared.reports.pipeline import REPORT_HTML, plan_report
from shared.reports.store import fail_unqueued, find_report, report_file, report_page

log = logging.getLogger(__name__)

router = APIRouter(tags=["reports"])
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}
FILE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse, "description": "The report is not done (yet)"},
}
ReportId = Annotated[int, Path(ge=1, le=2**62, description="Report id")]


def _links(report: Report) -> ReportLinks:
    if report.status != ReportStatus.DONE:
        return ReportLinks()
    base = f"/v1/reports/{report.id}"
    return ReportLinks(
        html=f"{base}/html",
        assignments_csv=f"{base}/{ASSIGNMENTS_CSV}",
        assignments_parquet=f"{base}/{ASSIGNMENTS_PARQUET}",
    )


def _aware(value: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes (stored in UTC).
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def report_summary(report: Report) -> ReportSummary:
    """Selection and method from the request, sizes from the result, duration from the times."""
    params: dict[str, Any] = dict(report.params or {})
    result: dict[str, Any] = report.result or {}
    started, finished = _aware(report.started_at), _aware(report.finished_at)
    duration = None
    if started is not None:
        duration = max(0.0, ((finished or datetime.now(UTC)) - started).total_seconds())
    clusters = (result.get("k") or {}).get("total")
    objects = (result.get("selection") or {}).get("objects")
    return ReportSummary(
        selection=ReportSelection(
            classes=[str(c) for c in params.get("classes") or []],
            ingestions=[int(i) for i in params.get("ingestions") or []],
            min_score=params.get("min_score"),
            space_id=params.get("space_id"),
        ),
        method=str(params.get("method") or "kmeans"),
        per_class=bool(params.get("per_class")),
        k_requested=params.get("k"),
        objects=int(objects) if objects is not None else None,
        clusters=int(clusters) if clusters is not None else None,
        duration_s=duration,
    )


def report_out(report: Report, *, with_result: bool = True) -> ReportOut:
    return ReportOut(
        id=report.id,
        kind=report.kind,
        status=report.status,
        progress=report.progress,
        params=dict(report.params or {}),
        error_code=report.error_code,
        error_message=report.error_message,
        created_at=report.created_at,
        started_at=report.started_at,
        finished_at=report.finished_at,
        links=_links(report),
        summary=report_summary(report),
        result=report.result if with_result else None,
    )


@router.post(
    "/v1/reports/clusters",
    response_model=ReportOut,
    status_code=202,
    responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
    summary="Start a clustering report over a selection of objects",
)
def create_clusters_report(params: ClusterParams, resources: ResourcesDep) -> ReportOut:
    """Cluster the selected objects (k-means with given or automatic k, or a density method),
    per class or across classes; follow it with ``GET /v1/reports/{id}``.

    422 codes: ``unknown_class``, ``space_not_found``, ``space_required``,
    ``ingestion_not_found``, ``empty_selection``, ``k_too_large``, ``validation_error``.
    """
    with resources.db.read() as session:
        plan_report(session, params)  # raises invalid input (422) before anything is queued
    report_id = create_cluster_report(resources.db, params)
    try:
        resources.queue.enqueue_report(report_id)
    except Exception:
        log.exception("report %s could not be queued", report_id)
        fail_unqueued(resources.db, report_id)
        raise Unavailable(
            "queue_unavailable", "the job queue could not be reached; try again later"
        ) from None
    return report_out(find_report(resources.db, report_id))


@router.get("/v1/reports", response_model=ReportList, summary="List reports, newest first")
def list_reports(
    resources: ResourcesDep,
    page: PageDep,
    status: Annotated[ReportStatus | None, Query(description="Only reports in this status")] = None,
) -> ReportList:
    """Without the ``result`` bodies (fetch one report for that)."""
    total, rows = report_page(resources.db, status=status, offset=page.offset, limit=page.page_size)
    return ReportList(
        page=Page(page=page.page, page_size=page.page_size, total=total),
        reports=[report_out(r, with_result=False) for r in rows],
    )


@router.get(
    "/v1/reports/{report_id}",
    response_model=ReportOut,
    responses=ERRORS,
    summary="Status, progress and (when done) the result of a report",
)
def get_report(report_id: ReportId, resources: ResourcesDep) -> ReportOut:
    return report_out(find_report(resources.db, report_id))


def _serve(resources: ResourcesDep, report_id: int, name: str, media_type: str) -> FileResponse:
    path = report_file(resources.settings.reports_dir, find_report(resources.db, report_id), name)
    download = None if name == REPORT_HTML else f"report-{report_id}-{name}"
    return FileResponse(path, media_type=media_type, filename=download)


@router.get(
    "/v1/reports/{report_id}/html",
    response_class=FileResponse,
    responses={**FILE_ERRORS, 200: {"content": {"text/html": {}}}},
    summary="The report as one self-contained HTML page",
)
def get_report_html(report_id: ReportId, resources: ResourcesDep) -> FileResponse:
    """Exemplar crops per cluster, sizes, class mix and a 2-D map; no external resources."""
    return _serve(resources, report_id, REPORT_HTML, "text/html; charset=utf-8")


@router.get(
    f"/v1/reports/{{report_id}}/{ASSIGNMENTS_CSV}",
    response_class=FileResponse,
    responses={**FILE_ERRORS, 200: {"content": {"text/csv": {}}}},
    summary="Object → cluster assignments as CSV",
)
def get_assignments_csv(report_id: ReportId, resources: ResourcesDep) -> FileResponse:
    """Columns: object_id, image_id, class_id, class_name, cluster (-1: noise), similarity."""
    return _serve(resources, report_id, ASSIGNMENTS_CSV, "text/csv; charset=utf-8")


@router.get(
    f"/v1/reports/{{report_id}}/{ASSIGNMENTS_PARQUET}",
    response_class=FileResponse,
    responses={**FILE_ERRORS, 200: {"content": {"application/vnd.apache.parquet": {}}}},
    summary="Object → cluster assignments as Parquet",
)
def get_assignments_parquet(report_id: ReportId, resources: ResourcesDep) -> FileResponse:
    return _serve(resources, report_id, ASSIGNMENTS_PARQUET, "application/vnd.apache.parquet")
