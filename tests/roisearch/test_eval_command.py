"""`roisearch eval`: the bundled demo detector against the demo archive's own labels."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from demo.export import write_dataset
from roisearch.cli import app


def test_eval_prints_ap_per_class_and_json(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        **{key: None for key in os.environ if key.startswith("ROISEARCH_")},
        "ROISEARCH_DATA_DIR": str(tmp_path / "data"),
        "ROISEARCH_TORCH_THREADS": "1",
    }
    runner = CliRunner()
    empty = runner.invoke(app, ["eval"], env=env)
    assert empty.exit_code == 1 and "no_labelled_images" in empty.stderr
    write_dataset(tmp_path / "scenes.zip", 8, seed=4, as_zip=True)
    assert runner.invoke(app, ["ingest", str(tmp_path / "scenes.zip")], env=env).exit_code == 0
    shown = runner.invoke(app, ["eval"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "8 labelled image(s)" in shown.stdout and "AP@0.5:0.95" in shown.stdout
    document = json.loads(runner.invoke(app, ["eval", "--json"], env=env).stdout)
    assert document["map50"] == pytest.approx(
        sum(c["ap50"] for c in document["classes"]) / len(document["classes"])
    )
    assert document["map50"] > 0.5  # the demo detector knows the demo shapes
