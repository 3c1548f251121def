"""Stored reports: found and paged detached from their session, their files, an unqueued one."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.db.database import Database
from shared.db.models import Report, ReportStatus
from shared.errors import Conflict, NotFound
from shared.reports.job import create_cluster_report
from shared.reports.params import ClusterParams
from shared.reports.store import fail_unqueued, find_report, report_file, report_page


def test_reports_are_found_and_paged_newest_first(database: Database) -> None:
    ids = [create_cluster_report(database, ClusterParams()) for _ in range(3)]
    report = find_report(database, ids[0])  # readable without a session
    assert (report.id, report.status, report.params["method"]) == (ids[0], "queued", "kmeans")
    total, page = report_page(database, status=None, offset=1, limit=1)
    assert total == 3 and [r.id for r in page] == [ids[1]]
    fail_unqueued(database, ids[2])
    failed = find_report(database, ids[2])
    assert (failed.status, failed.error_code) == (ReportStatus.FAILED, "queue_unavailable")
    total, page = report_page(database, status=ReportStatus.QUEUED, offset=0, limit=10)
    assert total == 2 and [r.id for r in page] == [ids[1], ids[0]]
    with pytest.raises(NotFound) as info:
        find_report(database, 999)
    assert (info.value.code, info.value.message) == (
        "report_not_found",
        "report 999 does not exist",
    )


def test_a_report_s_files_exist_once_it_is_done(database: Database, tmp_path: Path) -> None:
    report_id = create_cluster_report(database, ClusterParams())
    with pytest.raises(Conflict) as info:
        report_file(tmp_path, find_report(database, report_id), "report.html")
    assert info.value.code == "report_not_done" and info.value.details["status"] == "queued"
    with database.begin() as session:
        stored = session.get(Report, report_id)
        assert stored is not None
        stored.status = ReportStatus.DONE
    done = find_report(database, report_id)
    with pytest.raises(NotFound) as missing:
        report_file(tmp_path, done, "report.html")
    assert missing.value.code == "report_file_missing"
    (tmp_path / str(report_id)).mkdir()
    (tmp_path / str(report_id) / "report.html").write_text("<html></html>")
    assert report_file(tmp_path, done, "report.html") == tmp_path / str(report_id) / "report.html"
