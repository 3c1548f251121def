"""The report job: run one queued report, record progress and its outcome in the database.

Called by the RQ job ``worker.jobs.run_report`` and by the in-process queue (embedded mode).
Idempotent: a report already ``done`` is left alone; one ``queued``, ``running`` (a crashed or
retried run) or ``failed`` is (re)computed from scratch, its files replaced atomically.

Outcomes: ``done`` with ``result`` set; or ``failed`` with ``error_code`` and
``error_message`` — the codes of :class:`shared.reports.errors.ReportError` (bad parameters or
data: ``empty_selection``, ``k_too_large``, ``unknown_class``, ...), ``invalid_parameters``
(stored params no longer valid), or ``internal_error`` (unexpected; logged, and re-raised so
that RQ may retry).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import faiss
from pydantic import ValidationError

from shared.db.database import Database
from shared.db.models import Report, ReportStatus
from shared.errors import InvalidInput
from shared.reports.config import ReportConfig
from shared.reports.params import REPORT_KIND_CLUSTERS, ClusterParams
from shared.reports.pipeline import build_cluster_report

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 1.0


def create_cluster_report(db: Database, params: ClusterParams) -> int:
    """Insert a queued report row for ``params``; the caller enqueues it. Returns its id."""
    with db.begin() as session:
        report = Report(
            kind=REPORT_KIND_CLUSTERS,
            status=ReportStatus.QUEUED,
            progress=0.0,
            params=params.model_dump(mode="json"),
        )
        session.add(report)
        session.flush()
        return int(report.id)


def _start(db: Database, report_id: int) -> dict[str, object] | None:
    """Mark the report running and return its params; None when there is nothing to do."""
    with db.begin() as session:
        report = session.get(Report, report_id)
        if report is None:
            log.warning("report %s does not exist (deleted?); nothing to do", report_id)
            return None
        if report.status == ReportStatus.DONE:
            return None
        report.status = ReportStatus.RUNNING
        report.progress = 0.0
        report.started_at = datetime.now(UTC)
        report.finished_at = None
        report.error_code = None
        report.error_message = None
        report.result = None
        return dict(report.params or {})


def _finish(
    db: Database,
    report_id: int,
    status: ReportStatus,
    *,
    result: dict[str, object] | None = None,
    code: str | None = None,
    message: str | None = None,
) -> None:
    with db.begin() as session:
        report = session.get(Report, report_id)
        if report is None:
            return
        report.status = status
        report.result = result
        report.error_code = code
        report.error_message = message
        report.finished_at = datetime.now(UTC)
        if status == ReportStatus.DONE:
            report.progress = 1.0


def run_cluster_report(db: Database, config: ReportConfig, report_id: int) -> str:
    """Compute report ``report_id``; returns its final status (``done`` or ``failed``)."""
    raw = _start(db, report_id)
    if raw is None:
        return ReportStatus.DONE
    last = [0.0]

    def progress(value: float, stage: str) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_INTERVAL_S and value < 1.0:
            return
        last[0] = now
        with db.begin() as session:
            report = session.get(Report, report_id)
            if report is not None:
                report.progress = round(min(max(value, 0.0), 1.0), 4)
        log.debug("report %s: %s %.0f%%", report_id, stage, 100 * value)

    # OpenMP's thread count is per calling thread (the index's threads keep theirs); it is
    # restored afterwards because a worker's model may share the OpenMP runtime.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(config.report_threads)
    try:
        params = ClusterParams.model_validate(raw)
        result = build_cluster_report(db, config, report_id, params, progress=progress)
    except ValidationError as exc:
        _finish(
            db,
            report_id,
            ReportStatus.FAILED,
            code="invalid_parameters",
            message=f"the stored parameters are invalid: {exc.errors()[0]['msg']}",
        )
        return ReportStatus.FAILED
    except InvalidInput as exc:  # a report or selection error: the caller's to fix
        _finish(db, report_id, ReportStatus.FAILED, code=exc.code, message=exc.message)
        return ReportStatus.FAILED
    except Exception as exc:
        log.exception("report %s failed", report_id)
        _finish(
            db,
            report_id,
            ReportStatus.FAILED,
            code="internal_error",
            message=f"the report failed unexpectedly ({type(exc).__name__}); see the logs",
        )
        raise
    finally:
        faiss.omp_set_num_threads(threads)
    _finish(db, report_id, ReportStatus.DONE, result=result)
    log.info("report %s done: %s clusters", report_id, result["k"]["total"])
    return ReportStatus.DONE
