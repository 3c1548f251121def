"""The model's max-pools: shifted-view maxima (``shared.yolov7.max_pooling``) vs ``nn.MaxPool2d``.

    .venv/bin/python -m bench.max_pooling [--models demo yolov7-tiny yolov7] [--reps 6]
                                          [--threads 1 2]

For each model the same fused eval-mode network runs ``model(x)`` on one 640×384 input
(a letterboxed 16:9 photo) with its pools swapped back and forth between the two
implementations in one process, ``reps`` rounds interleaved (so drift in the machine's speed
hits both alike), asserting identical outputs each time. Prints the best and the median
forward time of each and the time the pools alone take each way (timed on the shapes the
forward gives them). Models: the bundled demo detector (``demo``, when present)
and the built-in yolov7-tiny / yolov7 architectures with random weights.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from shared.yolov7.max_pooling import MaxPool

SHAPE = (1, 3, 384, 640)


def _torch_pool(fast: MaxPool) -> nn.MaxPool2d:
    if fast.stride == 1:
        return nn.MaxPool2d(fast.k, 1, fast.k // 2)
    return nn.MaxPool2d(fast.k, fast.k)


Site = tuple[nn.Module, str, nn.Module, nn.MaxPool2d]


def _pool_sites(model: nn.Module) -> list[Site]:
    """(parent, attribute, shifted-view pool, equivalent nn.MaxPool2d) for every pool."""
    sites: list[Site] = []
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, MaxPool):
                sites.append((parent, name, child, _torch_pool(child)))
    return sites


def _use(sites: list[Site], torch_pools: bool) -> None:
    for parent, name, fast, slow in sites:
        setattr(parent, name, slow if torch_pools else fast)


def _load(name: str) -> Any:
    from shared.yolov7.architectures import BUILTIN_CONFIGS
    from shared.yolov7.detector import Detector
    from shared.yolov7.detector_config import DetectorConfig
    from shared.yolov7.model import build_model

    if name == "demo":
        return Detector.load(DetectorConfig(img_size=640)).model
    torch.manual_seed(0)
    model = build_model(BUILTIN_CONFIGS[name](80))
    return Detector(model, DetectorConfig(device="cpu"), weights_sha256="bench").model


def _pool_time(model: nn.Module, x: torch.Tensor, reps: int) -> float:
    """ms per forward spent in the model's pools as currently installed, on the input shapes
    the forward gives them."""
    inputs: list[tuple[nn.Module, torch.Tensor]] = []
    hooks = [
        m.register_forward_hook(lambda m, i, _o: inputs.append((m, i[0])))
        for m in model.modules()
        if isinstance(m, nn.MaxPool2d | MaxPool)
    ]
    model(x)
    for hook in hooks:
        hook.remove()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        for pool, tensor in inputs:
            pool(tensor)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def measure(name: str, threads: int, reps: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    model = _load(name)
    sites = _pool_sites(model)
    x = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0))
    times: dict[bool, list[float]] = {False: [], True: []}
    with torch.inference_mode():
        reference = model(x).decoded
        for _ in range(reps):
            for torch_pools in (False, True):
                _use(sites, torch_pools)
                start = time.perf_counter()
                out = model(x).decoded
                times[torch_pools].append((time.perf_counter() - start) * 1e3)
                assert torch.equal(out, reference), "the two pools gave different outputs"
        _use(sites, True)
        torch_pools_ms = _pool_time(model, x, reps)
        _use(sites, False)
        views_pools_ms = _pool_time(model, x, reps)
    return {
        "pools": len(sites),
        "torch best": min(times[True]),
        "torch median": statistics.median(times[True]),
        "views best": min(times[False]),
        "views median": statistics.median(times[False]),
        "torch pools alone": torch_pools_ms,
        "views pools alone": views_pools_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=["demo", "yolov7-tiny", "yolov7"])
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    table = Table(
        title=f"forward ms at {SHAPE[3]}x{SHAPE[2]}, fp32 CPU, interleaved x{args.reps}; "
        "nn.MaxPool2d vs shifted views"
    )
    for column in (
        "model",
        "threads",
        "pools",
        "MaxPool2d best / median",
        "views best / median",
        "saved (median)",
        "pools alone ms, MaxPool2d / views",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for threads in args.threads:
        for name in args.models:
            r = measure(name, threads, args.reps)
            table.add_row(
                name,
                str(threads),
                str(int(r["pools"])),
                f"{r['torch best']:.1f} / {r['torch median']:.1f}",
                f"{r['views best']:.1f} / {r['views median']:.1f}",
                f"{1 - r['views median'] / r['torch median']:.0%}",
                f"{r['torch pools alone']:.1f} / {r['views pools alone']:.1f}",
            )
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
