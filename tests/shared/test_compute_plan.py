"""How a process splits its threads into inference streams."""

from __future__ import annotations

import pytest

from shared.compute_plan import ComputePlan, compute_plan
from shared.yolov7.detector_config import DetectorConfig


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
    cores: int,
    threads: int | None,
    streams: int | None,
    cuda: bool,
    expected: ComputePlan,
) -> None:
    config = DetectorConfig(torch_threads=threads, model_streams=streams)
    assert compute_plan(config, cuda=cuda, cores=cores) == expected
