"""How a process splits its threads into inference streams."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.compute_plan import ComputePlan, compute_plan
from shared.settings import load_settings


@pytest.mark.parametrize(
    ("cores", "threads", "streams", "cuda", "expected"),
    [
        (2, None, None, False, ComputePlan(streams=2, threads=1)),  # this machine
        (1, None, None, False, ComputePlan(streams=1, threads=1)),
        (8, None, None, False, ComputePlan(streams=4, threads=2)),
        (16, None, None, False, ComputePlan(streams=4, threads=4)),
        (4, 3, None, False, ComputePlan(streams=1, threads=3)),  # an odd budget: one stream
        (16, None, None, True, ComputePlan(streams=1, threads=16)),  # the GPU does the work
        (16, 8, 2, False, ComputePlan(streams=2, threads=4)),  # explicit settings win
        (2, None, 4, False, ComputePlan(streams=4, threads=1)),  # never below one thread
    ],
)
def test_plan(
    tmp_path: Path,
    cores: int,
    threads: int | None,
    streams: int | None,
    cuda: bool,
    expected: ComputePlan,
) -> None:
    settings = load_settings(data_dir=tmp_path, torch_threads=threads, model_streams=streams)
    assert compute_plan(settings, cuda=cuda, cores=cores) == expected
