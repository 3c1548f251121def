"""`roisearch demo-data`, `roisearch train-demo`, `roisearch eval-demo`."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from demo.scenes import CLASS_NAMES
from roisearch.cli import app

torch.set_num_threads(1)


def test_demo_data_folder(tmp_path: Path) -> None:
    out = tmp_path / "scenes"
    result = CliRunner().invoke(app, ["demo-data", "--out", str(out), "--n", "4", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert len(list((out / "images").glob("*.jpg"))) == 4
    coco = json.loads((out / "annotations.json").read_text())
    assert len(coco["images"]) == 4 and len(coco["categories"]) == len(CLASS_NAMES)
    assert "4/4 scenes" in result.stderr
    # a second run into the same, now non-empty folder is refused
    again = CliRunner().invoke(app, ["demo-data", "--out", str(out), "--n", "4"])
    assert again.exit_code == 2 and "already exists" in again.output


def test_demo_data_zip(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo-data", "--out", str(tmp_path / "scenes"), "--n", "3", "--zip"]
    )
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(tmp_path / "scenes.zip") as zf:
        names = set(zf.namelist())
    assert {"annotations.json", "classes.txt", "images/000002.jpg", "labels/000000.txt"} <= names
    assert "near_duplicate_objects.json" in names and "object pairs" in result.output
    document = json.loads(
        CliRunner()
        .invoke(app, ["demo-data", "--out", str(tmp_path / "more"), "--n", "2", "--json"])
        .stdout
    )
    assert document["images"] == 2
    assert [c["class_name"] for c in document["classes"]] == list(CLASS_NAMES)


def test_train_then_eval(tmp_path: Path) -> None:
    weights = tmp_path / "tiny.safetensors"
    result = CliRunner().invoke(
        app,
        [
            "train-demo", "--out", str(weights), "--epochs", "1", "--img-size", "64",
            "--images", "16", "--batch-size", "8", "--workers", "1", "--val-images", "0",
            "--data-dir", str(tmp_path / "data"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert weights.is_file() and "2 steps" in result.output
    figures = tmp_path / "eval.json"
    result = CliRunner().invoke(
        app,
        ["eval-demo", "--weights", str(weights), "--n", "2", "--out", str(figures)],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(figures.read_text())
    assert doc["images"] == 2
    kinds = {(row["kind"], row["boxes"]) for row in doc["retrieval"]}
    assert len(kinds) == 14  # 7 vector kinds × (ground-truth boxes, detections)
    assert "mAP@0.5" in result.output and "RoIAlign" in result.output
    printed = CliRunner().invoke(
        app, ["eval-demo", "--weights", str(weights), "--n", "2", "--json"]
    )
    # --json prints the document --out writes (strict JSON: NaN figures are null)
    strict = json.loads(printed.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert strict["retrieval"][0]["kind"] == doc["retrieval"][0]["kind"]


def test_train_demo_rejects_a_bad_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train-demo", "--out", str(tmp_path / "w.pt")])
    assert result.exit_code == 2 and "safetensors" in result.output
