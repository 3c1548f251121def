"""Faults of the disk: a data directory that cannot be written (blocked path, read-only file
system), and a disk that fills up mid-ingestion."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.proof import invariants
from bench.proof.config import ProofConfig, Scenario
from bench.proof.corpus import scene_jpegs, zip_of
from bench.proof.faults.scaffold import SECTION
from bench.proof.invariants import item_account
from bench.proof.processes import child_env
from bench.proof.results import Check, Report
from bench.proof.servers import PrivateServers
from shared.db.database import Database
from shared.db.models import DetectedObject, Ingestion

# --- unwritable data directory, disk full ----------------------------------------------------


def _run_cli(args: list[str], values: dict[str, Any], cwd: Path, timeout: float) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "roisearch", *args],
        env=child_env(values),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc.returncode, proc.stderr + proc.stdout


def _clear(code: int, output: str) -> tuple[bool, str]:
    """A clear error: non-zero exit, no traceback, a message; returns (clear, first line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    error_lines = [
        line
        for line in lines
        if ("error" in line.lower() or "no space" in line.lower()) and "sqlalche.me" not in line
    ]
    first = (error_lines or lines or ["(no output)"])[-1][:200]
    traceback = "Traceback (most recent call last)" in output
    return code != 0 and not traceback and bool(lines), first + (
        " [traceback]" if traceback else ""
    )


@contextlib.contextmanager
def _tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[bool]:
    """Mount a small tmpfs at ``path`` (root only); yields False when that is not possible."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        yield False
        return
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _store_intact(data_dir: Path) -> tuple[int, int]:
    """(files, files whose content hash does not match their name) in the image store."""
    files = bad = 0
    for path in (data_dir / "images").rglob("*"):
        if path.is_file() and not path.name.startswith(".tmp"):
            files += 1
            stem = path.name.split(".")[0]
            if hashlib.sha256(path.read_bytes()).hexdigest() != stem:
                bad += 1
    return files, bad


def _sqlite_state(db_path: Path) -> tuple[str, int]:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        integrity = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
        objects = int(conn.execute("SELECT count(*) FROM objects").fetchone()[0])
    return integrity, objects


def disk_faults(config: ProofConfig, servers: PrivateServers, base: Path, report: Report) -> None:
    name = "disk"
    sc = Scenario.create(name, config, servers, base)
    embedded = {
        k: v for k, v in sc.overrides.items() if k not in ("redis_url", "database_url", "data_dir")
    }
    small = zip_of(
        sc.root / "small.zip", {f"s/{i}.jpg": d for i, d in enumerate(scene_jpegs(6, seed=5))}
    )
    large = zip_of(
        sc.root / "large.zip",
        {
            f"l/{i}.jpg": d
            for i, d in enumerate(
                scene_jpegs(16 if config.quick else 40, seed=6, width=640, height=480)
            )
        },
    )
    cli_timeout = config.scenario_timeout_s

    # (a) the data directory cannot be created: a regular file is in the way
    blocker = sc.root / "not-a-directory"
    blocker.write_text("a file where the data directory's parent should be")
    code, output = _run_cli(
        ["ingest", str(small)], embedded | {"data_dir": blocker / "data"}, sc.root, cli_timeout
    )
    clear, line = _clear(code, output)
    report.add(
        Check(
            SECTION,
            "unwritable data dir (path blocked): clear error",
            f"exit {code}: {line}",
            "non-zero exit, message, no traceback",
            clear,
            {"output": output},
        )
    )

    # (b) a read-only file system
    read_only = sc.root / "read-only"
    with _tmpfs(read_only, "1m", read_only=True) as mounted:
        if not mounted:
            read_only.chmod(0o555)
        code, output = _run_cli(
            ["ingest", str(small)],
            embedded | {"data_dir": read_only / "data"},
            sc.root,
            cli_timeout,
        )
        clear, line = _clear(code, output)
        report.add(
            Check(
                SECTION,
                "read-only data dir: clear error",
                f"exit {code}: {line}",
                "non-zero exit, message, no traceback",
                clear and (mounted or os.geteuid() != 0),
                {"output": output, "tmpfs": mounted},
            )
        )

    # (c) disk full mid-ingestion: what was there before survives, the run resumes after
    full = sc.root / "full"
    size_kb = 2048
    with _tmpfs(full, f"{size_kb}k") as mounted:
        if not mounted:
            report.add(
                Check(SECTION, "disk full", "not run: mounting a small tmpfs needs root", "", None)
            )
            return
        values = embedded | {"data_dir": full / "data"}
        code_a, out_a = _run_cli(["ingest", str(small)], values, sc.root, cli_timeout)
        db_path = full / "data" / "roisearch.db"
        integrity_a, objects_a = _sqlite_state(db_path)
        files_a, _ = _store_intact(full / "data")
        code_b, out_b = _run_cli(["ingest", str(large)], values, sc.root, cli_timeout)
        clear, line = _clear(code_b, out_b)
        integrity_b, objects_b = _sqlite_state(db_path)
        files_b, bad_b = _store_intact(full / "data")
        report.add(
            Check(
                SECTION,
                "disk full mid-ingestion: clear error",
                f"exit {code_b}: {line}",
                "non-zero exit, message, no traceback",
                code_a == 0 and clear,
                {"output": out_b, "first_run": out_a[-1500:]},
            )
        )
        survived = (
            integrity_b == "ok" and objects_b >= objects_a and bad_b == 0 and files_b >= files_a
        )
        report.add(
            Check(
                SECTION,
                "disk full: what was there survives",
                f"integrity_check {integrity_b}; objects {objects_a} -> {objects_b}; "
                f"stored originals {files_a} -> {files_b}, {bad_b} corrupt",
                "ok, nothing lost, 0 corrupt",
                survived and objects_a > 0,
                {"integrity_before": integrity_a},
            )
        )
        subprocess.run(["mount", "-o", f"remount,size={64 * 1024}k", str(full)], check=False)
        code_c, out_c = _run_cli(["ingest", str(large)], values, sc.root, cli_timeout)
        db = Database.from_url(f"sqlite:///{db_path}")
        try:
            with db.read() as session:
                ids = [int(i) for i in session.scalars(select(Ingestion.id).order_by(Ingestion.id))]
            account = item_account(db, ids[-1:])  # the re-run
            abandoned = item_account(db, ids[1:-1])  # the run the full disk interrupted
            dup = invariants.duplicates(db)
            with db.read() as session:
                objects_c = int(
                    session.scalar(select(func.count()).select_from(DetectedObject)) or 0
                )
        finally:
            db.dispose()
        report.add(
            Check(
                SECTION,
                "disk full: re-run after space is freed",
                f"exit {code_c}; {account.done} done, {account.failed} failed, "
                f"{account.pending} pending; {objects_c} objects; duplicates "
                f"{dup.object_keys}/{dup.image_hashes}/{dup.count_mismatches}",
                "completes, 0 pending, 0 duplicates",
                code_c == 0 and account.pending == 0 and dup.ok,
                {"output": out_c[-1500:], "account": account.__dict__},
            )
        )
        report.add(
            Check(
                SECTION,
                "disk full: the interrupted ingestion",
                f"{abandoned.pending} items left pending, "
                f"{'unfinished' if abandoned.unfinished_ingestions else 'finished'} "
                "(re-running the source makes a new ingestion)",
                "0 pending (resumed, or failed with a reason)",
                abandoned.pending == 0 and not abandoned.unfinished_ingestions,
                {"account": abandoned.__dict__},
            )
        )
