"""`roisearch layers` and `roisearch convert`."""

from __future__ import annotations

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
