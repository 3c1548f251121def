"""Storage failures (full disk, read-only, blocked path) end the CLI with one clear line."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from roisearch.storage_errors import storage_failure


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (errno.ENOSPC, "disk is full"),
        (errno.EROFS, "read-only"),
        (errno.ENOTDIR, "not a folder"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_os_errors_are_explained_with_the_path(code: int, meaning: str) -> None:
    message = storage_failure(OSError(code, os.strerror(code), "/data/x"))
    assert message is not None
    assert meaning in message and "/data/x" in message and "ROISEARCH_DATA_DIR" in message


def test_sqlite_full_disk_is_explained_through_the_exception_chain() -> None:
    full = OperationalError("INSERT ...", {}, sqlite3.OperationalError("database or disk is full"))
    try:
        try:
            raise full
        except OperationalError as inner:
            raise RuntimeError("chunk failed") from inner
    except RuntimeError as outer:
        message = storage_failure(outer)
    assert message is not None and "disk is full" in message


def test_other_errors_are_not_storage_failures() -> None:
    assert storage_failure(ValueError("bad")) is None
    assert storage_failure(OSError(errno.ECONNREFUSED, "refused")) is None
    locked = OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))
    assert storage_failure(locked) is None


def test_ingest_into_a_blocked_data_dir_exits_with_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory's parent should be")
    source = tmp_path / "images"
    source.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ROISEARCH_")}
    env["ROISEARCH_DATA_DIR"] = str(blocker / "data")
    done = subprocess.run(
        [sys.executable, "-m", "roisearch", "ingest", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert "not a folder" in output and str(blocker) in output
