"""bench.ingest's paired rounds and bench.max_pooling run end to end (tiny inputs), so the
scripts behind the README's figures cannot rot."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from bench import ingest, max_pooling

pytestmark = pytest.mark.skipif(
    not ingest.DEMO_WEIGHTS.is_file(), reason="the bundled demo detector is absent"
)


@pytest.mark.parametrize(
    ("mode", "row"),
    [
        ("embedded", "embedded, 2 decode thread(s)"),
        pytest.param(
            "rq1",
            "RQ, 1 worker(s) x 1 torch thread(s)",
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
    tmp_path: Path, mode: str, row: str
) -> None:
    args = argparse.Namespace(
        images=6, rounds=2, img_size=256, threads=1, chunk=32, only=[mode], skip_rq=False
    )
    console = Console(record=True, width=200)
    ingest.run_rounds(console, tmp_path, ingest.DEMO_WEIGHTS, args, (320, 240))
    text = console.export_text()
    assert "paired rounds, 3 images each" in text
    assert text.count(row) >= 3  # two rows and the summary
    assert "x adjacent best bare: median" in text


def test_max_pooling_bench_compares_identical_forwards() -> None:
    figures = max_pooling.measure("demo", threads=1, reps=1)  # asserts equal outputs itself
    assert figures["pools"] == 6
    assert figures["torch best"] > 0 and figures["views best"] > 0
