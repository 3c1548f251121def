"""`make deps` (deptry) keeps the runtime dependencies complete: it passes on the project, and
it refuses the defect it was added for, httpx imported by the CLI client but declared only in
the dev extra (so `pip install .` gave a `roisearch search` that could not start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

DEPTRY = Path(sys.executable).parent / "deptry"
INSTALLED = ["shared", "api", "worker", "roisearch", "demo", "migrations"]


def _deptry(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DEPTRY), "--config", str(config), "--no-ansi", *INSTALLED],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_installed_packages_need_no_dev_dependency() -> None:
    run = _deptry(REPO_ROOT / "pyproject.toml")
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_runtime_import_of_a_dev_dependency_is_refused(tmp_path: Path) -> None:
    text = (REPO_ROOT / "pyproject.toml").read_text()
    runtime = '    "httpx>=0.27",\n'
    assert text.count(runtime) == 1
    moved = text.replace(runtime, "").replace(
        '"deptry>=0.20",', '"deptry>=0.20",\n    "httpx>=0.27",'
    )
    config = tmp_path / "pyproject.toml"
    config.write_text(moved)
    run = _deptry(config)
    report = run.stdout + run.stderr
    assert run.returncode == 1, report
    assert "roisearch/commands/client.py" in report
    assert "DEP004 'httpx' imported but declared as a dev dependency" in report
