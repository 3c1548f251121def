"""bench.ingest's paired rounds and bench.max_pooling run end to end (tiny inputs), so the
scripts behind the README's figures cannot rot."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from bench import ingest, max_pooling
from bench.proof.config import DEMO_WEIGHTS

pytestmark = pytest.mark.skipif(
    not DEMO_WEIGHTS.is_file(), reason="the bundled demo detector is absent"
)


@pytest.mark.parametrize(
    ("mode", "row", "source"),
    [
        ("embedded", "embedded, 2 decode thread(s)", "demo"),
        pytest.param(
            "rq1",
            "RQ, 1 worker(s) x 1 torch thread(s)",
            "photos",
            marks=[
                pytest.mark.slow,
                pytest.mark.skipif(
                    shutil.which("redis-server") is None, reason="needs redis-server"
                ),
            ],
        ),
    ],
)
def test_paired_rounds_divide_each_run_by_its_neighbouring_baselines(
    tmp_path: Path, mode: str, row: str, source: str
) -> None:
    args = argparse.Namespace(
        images=6,
        rounds=2,
        img_size=256,
        threads=1,
        chunk=32,
        only=[mode],
        skip_rq=False,
        source=source,
    )
    console = Console(record=True, width=200)
    ingest.run_rounds(console, tmp_path, DEMO_WEIGHTS, args, (320, 240))
    text = console.export_text()
    assert "paired rounds, 3 images each" in text
    described = "demo scenes (200-320 px)" if source == "demo" else "JPEGs 320x240"
    assert f"2 rounds of 3 {described}" in text
    assert text.count(row) >= 3  # two rows and the summary
    assert "x adjacent best bare: median" in text


def test_demo_source_writes_the_demo_archives_scenes(tmp_path: Path) -> None:
    from PIL import Image

    from demo.scenes import generate_scene

    folder = ingest.make_folder(tmp_path / "scenes", 3, (1920, 1080), 7, "demo")
    for i, path in enumerate(sorted(folder.iterdir())):
        with Image.open(path) as image:
            assert image.format == "JPEG"
            assert image.size[::-1] == generate_scene(7, i).image.shape[:2]
            assert 200 <= max(image.size) <= 320


def test_max_pooling_bench_compares_identical_forwards() -> None:
    figures = max_pooling.measure("demo", threads=1, reps=1)  # asserts equal outputs itself
    assert figures["pools"] == 6
    assert figures["torch best"] > 0 and figures["views best"] > 0
