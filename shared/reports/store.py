"""Stored reports: find one, page through them, reach their files, fail one that was not queued.

Reports are returned detached from their (closed) session with every column loaded, so callers
read them freely without a database session.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from shared.db.database import Database
from shared.db.models import Report, ReportStatus
from shared.errors import Conflict, NotFound
from shared.reports.params import REPORT_KIND_CLUSTERS


def find_report(db: Database, report_id: int) -> Report:
    """The report ``report_id``; ``report_not_found`` if there is none."""
    with db.read() as session:
        report = session.get(Report, report_id)
        if report is None:
            raise NotFound("report_not_found", f"report {report_id} does not exist")
        session.expunge(report)  # the closing rollback would expire it
    return report


def report_page(
    db: Database, *, status: ReportStatus | None, offset: int, limit: int
) -> tuple[int, list[Report]]:
    """(how many clustering reports there are in ``status`` (any: ``None``), the page of them
    from ``offset``, newest first)."""
    conditions = [Report.kind == REPORT_KIND_CLUSTERS]
    if status is not None:
        conditions.append(Report.status == status)
    with db.read() as session:
        total = session.scalar(select(func.count(Report.id)).where(*conditions)) or 0
        reports = list(
            session.scalars(
                select(Report)
                .where(*conditions)
                .order_by(Report.id.desc())
                .offset(offset)
                .limit(limit)
            )
        )
        session.expunge_all()
    return int(total), reports


def report_file(reports_dir: Path, report: Report, name: str) -> Path:
    """The file ``name`` of a done report; ``report_not_done`` (a conflict: it exists once the
    report is done) or ``report_file_missing``."""
    if report.status != ReportStatus.DONE:
        raise Conflict(
            "report_not_done",
            f"report {report.id} is {report.status}; its files exist once it is done",
            {"status": report.status, "progress": report.progress},
        )
    path = reports_dir / str(report.id) / name
    if not path.is_file():
        raise NotFound("report_file_missing", f"the file {name} of report {report.id} is missing")
    return path


def fail_unqueued(db: Database, report_id: int) -> None:
    """Mark a report that the job queue could not take as failed (``queue_unavailable``)."""
    with db.begin() as session:
        report = session.get(Report, report_id)
        if report is not None:
            report.status = ReportStatus.FAILED
            report.error_code = "queue_unavailable"
            report.error_message = "the job queue could not be reached"
