"""`roisearch layers` and `roisearch convert`."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from roisearch.cli import app

torch.set_num_threads(1)


def test_layers_table(yolov7_fixtures: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["layers", "--weights", str(yolov7_fixtures / "yolov7-tiny-random.pt"), "--imgsz", "320"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "default ROI layer 71" in result.output
    assert "IDetect" in result.output and "[1, 128, 10, 10]" in result.output


def test_convert_and_bad_file(yolov7_fixtures: Path, tmp_path: Path) -> None:
    dst = tmp_path / "tiny.safetensors"
    result = CliRunner().invoke(
        app, ["convert", str(yolov7_fixtures / "yolov7-tiny-random.pt"), str(dst)]
    )
    assert result.exit_code == 0, result.output
    assert dst.is_file() and dst.with_suffix(".json").is_file()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(app, ["convert", str(bad), str(tmp_path / "x.safetensors")])
    assert result.exit_code == 1 and "bad.pt" in result.output


def test_layers_piped_gives_one_row_per_line_and_json(yolov7_fixtures: Path) -> None:
    """Issue 17 §3: `roisearch layers | grep 99` split each row over four lines at 80 columns."""
    weights = str(yolov7_fixtures / "yolov7-tiny-random.pt")
    piped = CliRunner().invoke(
        app, ["layers", "--weights", weights, "--imgsz", "320"], env={"COLUMNS": "80"}
    )
    assert piped.exit_code == 0, piped.output
    lines = piped.stdout.splitlines()
    assert lines[0] == "yolov7-tiny-random.pt at 320x320 (default ROI layer 71)"
    assert lines[1].split() == [
        "#", "type", "from", "output", "shape", "C", "stride", "params", "ROI", "note",
    ]  # fmt: skip
    rows = lines[2:]
    assert len(rows) == 78  # one line per layer, however wide
    row71 = next(line for line in rows if line.split()[0] == "71")
    assert "[1, 128, 10, 10]" in row71 and " yes " in row71

    document = json.loads(
        CliRunner().invoke(app, ["layers", "--weights", weights, "--imgsz", "320", "--json"]).stdout
    )
    assert document["default_layer"] == 71 and len(document["layers"]) == 78
    assert document["layers"][71] == {
        "index": 71,
        "type": "Conv",
        "source": "-1",
        "shape": "[1, 128, 10, 10]",
        "channels": 128,
        "stride": 32.0,
        "parameters": document["layers"][71]["parameters"],
        "roi_suitable": True,
        "note": document["layers"][71]["note"],
    }
