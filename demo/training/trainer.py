"""The training loop of the demo detector (a width-reduced yolov7-tiny) on generated scenes.

Reproducible from ``seed``: the training scenes are ``generate_scene(seed, i)`` (written once
to a cache folder), weight init and batch order derive from the seed, and torch runs with a
fixed thread count (CPU kernels then give identical results run to run).

Schedule: AdamW with decoupled weight decay on convolution weights only, linear warm-up then
a cosine decay, gradient-norm clipping, an EMA of the weights (the EMA is what gets
evaluated and exported). The exported file is the engine's safe format with the class names
and the native input size, so ``Detector.load`` needs nothing else.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from demo.evaluation import CENTRAL_FRACTION
from demo.export import write_dataset
from demo.scenes import CLASS_NAMES
from demo.training.anchors import fit_anchors
from demo.training.data import MAX_SCALE_JITTER, Record, epoch_batches, load_records
from demo.training.loss import LossWeights, detection_loss
from demo.training.schedule import WeightAverage, learning_rate_factor
from shared.yolov7.architectures import yolov7_tiny_config
from shared.yolov7.model import YoloModel, build_model
from shared.yolov7.safe_format import load_safe, save_safe

Log = Callable[[str], None]


@dataclass
class TrainConfig:
    """Everything that determines a training run (stored in the exported file)."""

    out: Path
    data_dir: Path
    train_images: int = 4000
    epochs: int = 24
    img_size: int = 320
    # the inference size recorded in the file (None: 1.2 × img_size rounded to 32). Training
    # jitters the scale by ×0.7–1.2, so that letterbox stays within what the model has seen
    # while giving the smallest objects more pixels (measured in docs/demo-detector.md)
    serve_size: int | None = None
    batch_size: int = 16
    width_multiple: float = 0.25
    lr: float = 1e-2
    weight_decay: float = 0.05
    warmup_steps: int = 300
    seed: int = 0
    threads: int = 1
    workers: int = 2  # data-parallel processes (see train())
    val_images: int = 100
    val_every: int = 3
    max_steps: int | None = None  # stop early (smoke tests)
    resume: bool = False  # continue from the last epoch checkpoint of this output, if any
    init: Path | None = None  # start from these weights (safe format) instead of from scratch
    loss: LossWeights = field(default_factory=LossWeights)

    @property
    def inference_size(self) -> int:
        if self.serve_size is not None:
            return self.serve_size
        return round(self.img_size * MAX_SCALE_JITTER / 32) * 32

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"], d["data_dir"] = str(self.out), str(self.data_dir)
        d["init"] = None if self.init is None else str(self.init)
        return d


@dataclass
class TrainResult:
    out: Path
    steps: int
    wall_time_s: float
    history: list[dict[str, Any]]
    final_loss: float


def ensure_training_data(config: TrainConfig, log: Log) -> None:
    """Generate the training scenes of ``config.seed`` into ``data_dir`` unless already there."""
    meta = config.data_dir / "dataset.json"
    fresh = False
    if meta.is_file():
        info = json.loads(meta.read_text())
        fresh = info.get("seed") == config.seed and info.get("images") == config.train_images
    if not fresh:
        log(
            f"generating {config.train_images} training scenes (seed {config.seed}) "
            f"into {config.data_dir}"
        )
        start = time.monotonic()
        # no pasted objects: the training set stays the one the shipped detector learnt from
        write_dataset(config.data_dir, config.train_images, config.seed, plant_objects=False)
        log(f"generated in {time.monotonic() - start:.0f} s")


def training_anchors(records: list[Record], img_size: int) -> list[list[float]]:
    """Anchors fitted to the boxes as they appear in the letterboxed training input."""
    sizes = [
        (r.boxes[:, 2:] - r.boxes[:, :2]) * (img_size / max(r.width, r.height))
        for r in records
        if len(r.boxes)
    ]
    return fit_anchors(np.concatenate(sizes, 0))


def new_model(config: TrainConfig, anchors: list[list[float]]) -> YoloModel:
    arch = yolov7_tiny_config(len(CLASS_NAMES), config.width_multiple, head="IDetect")
    arch["anchors"] = anchors
    model = build_model(arch, len(CLASS_NAMES))
    model.names = list(CLASS_NAMES)
    # build_model sets the objectness prior for a 640 px input; our input has (640/S)² fewer
    # cells per level, so each cell is that much more likely to hold an object.
    with torch.no_grad():
        for conv in model.head.m:
            assert isinstance(conv, nn.Conv2d) and conv.bias is not None
            conv.bias.view(model.head.na, -1)[:, 4] += 2 * math.log(640 / config.img_size)
    return model


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Decay convolution kernels only; BatchNorm, biases and implicit terms are not decayed
    (shrinking them towards 0 changes what the layer computes, not its capacity)."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.ndim == 4 and "implicit" not in name:
            decay.append(p)
        else:
            plain.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def validation_map(model: YoloModel, img_size: int, n: int) -> tuple[float, float]:
    """(mAP@0.5, mAP@0.5:0.95) of a copy of ``model`` on ``n`` held-out scenes."""
    from demo.evaluation import EVAL_CONF, EVAL_IOU, evaluate_detection, held_out_items
    from shared.yolov7.detector import Detector
    from shared.yolov7.detector_config import DetectorConfig

    config = DetectorConfig(
        device="cpu", img_size=img_size, conf_threshold=EVAL_CONF, iou_threshold=EVAL_IOU
    )
    detector = Detector(copy.deepcopy(model).float(), config, weights_sha256="training")
    report = evaluate_detection(detector, held_out_items(n))
    return report.map50, report.map50_95


def checkpoint_path(config: TrainConfig) -> Path:
    """Where each epoch's training state goes (for ``resume``); one file per output path."""
    tag = hashlib.sha1(str(config.out.resolve()).encode()).hexdigest()[:10]
    return config.data_dir / f"checkpoint-{config.out.stem}-{tag}.pt"


def _stamped(message: str) -> None:
    """The log of a spawned worker: stderr lines with the time (picklable, unlike consoles)."""
    print(time.strftime("%H:%M:%S"), message, file=sys.stderr, flush=True)


class _Sync:
    """Gradient averaging across data-parallel workers (no-op for a single process).

    One all-reduce of the flattened gradients per step, and rank 0's BatchNorm statistics
    broadcast after it, so every worker holds the same model (DDP's behaviour, without its
    bucketing machinery — the model is small)."""

    def __init__(self, model: nn.Module, rank: int, world: int) -> None:
        self.rank, self.world = rank, world
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.buffers = [b for b in model.buffers() if b.dtype.is_floating_point]
        if world > 1:
            for t in [*self.params, *self.buffers]:
                dist.broadcast(t.data, 0)

    def gradients(self) -> None:
        if self.world == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in self.params:
            n = p.numel()
            p.grad = flat[offset : offset + n].view_as(p).clone()
            offset += n

    def statistics(self) -> None:
        if self.world == 1:
            return
        flat = torch.cat([b.reshape(-1) for b in self.buffers])
        dist.broadcast(flat, 0)
        offset = 0
        for b in self.buffers:
            n = b.numel()
            b.copy_(flat[offset : offset + n].view_as(b))
            offset += n

    def mean(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return (t / self.world).tolist()


def train(config: TrainConfig, log: Log = print, progress: bool = True) -> TrainResult:
    """Run the whole training and export ``config.out``; see the module docstring.

    With ``config.workers`` > 1 the batch is split over that many processes (one thread
    each by default) that average their gradients every step; on a machine where other
    processes compete for the cores this is much faster than one process with several
    threads, whose every parallel region waits for its slowest thread."""
    start = time.monotonic()
    ensure_training_data(config, log)
    if config.workers == 1:
        result = _train_worker(0, 1, config, log, progress, start)
        assert result is not None
        return result
    init_file = config.data_dir / f"dist-{uuid.uuid4().hex}"
    try:
        # fork, not spawn: nothing has touched torch's thread pools in this process yet, and
        # the workers keep this process's command line (no anonymous multiprocessing children)
        mp.start_processes(
            _spawned,
            args=(config.workers, config, progress, str(init_file)),
            nprocs=config.workers,
            join=True,
            start_method="fork",
        )
    finally:
        init_file.unlink(missing_ok=True)
    doc = json.loads(config.out.with_suffix(".json").read_text())["extra"]
    history = doc["history"]
    return TrainResult(
        config.out, doc["steps"], time.monotonic() - start, history, history[-1]["loss"]
    )


def _spawned(rank: int, world: int, config: TrainConfig, progress: bool, init_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        log: Log = _stamped if rank == 0 else (lambda _: None)
        _train_worker(rank, world, config, log, progress and rank == 0, time.monotonic())
    finally:
        dist.destroy_process_group()


def _train_worker(
    rank: int, world: int, config: TrainConfig, log: Log, progress: bool, start: float
) -> TrainResult | None:
    """The training loop of one worker; rank 0 validates, checkpoints and exports."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    records = load_records(config.data_dir)
    if config.init is not None:
        model = load_safe(config.init)[0].model
        if model.nc != len(CLASS_NAMES) or model.head.fused:
            raise ValueError(f"{config.init}: not an unfused {len(CLASS_NAMES)}-class detector")
        anchors = [list(map(float, row)) for row in model.config["anchors"]]
        log(f"starting from {config.init}")
    else:
        anchors = training_anchors(records, config.img_size)
        model = new_model(config, anchors)
    log(f"anchors (px at {config.img_size}): {anchors}; {world} worker(s)")
    model.train()
    # ~1.4x faster convolutions on CPU (the stubs of Module.to lack memory_format)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    sync = _Sync(model, rank, world)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.999)
    )
    ema = WeightAverage(model)
    steps_per_epoch = len(records) // config.batch_size
    total = steps_per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    history: list[dict[str, Any]] = []
    step = 0
    first_epoch = 0
    last_loss = float("nan")
    saved = checkpoint_path(config)
    if config.resume and saved.is_file():
        state = torch.load(saved, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        ema.updates = int(state["ema_updates"])
        optimizer.load_state_dict(state["optimizer"])
        step, first_epoch, history = int(state["step"]), int(state["epoch"]) + 1, state["history"]
        log(f"resuming after epoch {first_epoch - 1} (step {step}) from {saved}")
    columns = (
        TextColumn("[bold]epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("train", total=total, epoch=0, loss=float("nan"), completed=step)
        for epoch in range(first_epoch, config.epochs):
            if step >= total:
                break
            sums = np.zeros(4)
            seen = 0
            epoch_start = time.monotonic()
            for x, targets in epoch_batches(
                records,
                config.img_size,
                config.batch_size,
                config.seed,
                epoch,
                part=(rank, world),
            ):
                if step >= total:
                    break
                factor = learning_rate_factor(step, total, config.warmup_steps)
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * factor
                raws = model(x.contiguous(memory_format=torch.channels_last))
                assert isinstance(raws, list)
                loss, parts = detection_loss(
                    raws, targets, model.anchors_pixels, model.strides, config.loss
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                sync.gradients()
                nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                optimizer.step()
                sync.statistics()
                if rank == 0:
                    ema.update(model)
                step += 1
                seen += 1
                values = sync.mean(
                    [float(loss.detach()) / x.shape[0], parts.box, parts.objectness, parts.classes]
                )
                last_loss = values[0]
                sums += values
                bar.update(task, advance=1, epoch=epoch, loss=last_loss)
                if step % 50 == 0 or step == total:
                    mean = sums / max(seen, 1)
                    log(
                        f"epoch {epoch} step {step}/{total} loss {mean[0]:.4f} (box {mean[1]:.4f}"
                        f" obj {mean[2]:.4f} cls {mean[3]:.4f}) lr {config.lr * factor:.2e} "
                        f"{seen * config.batch_size / (time.monotonic() - epoch_start):.1f} img/s "
                        f"elapsed {time.monotonic() - start:.0f} s"
                    )
            if rank != 0:
                continue
            mean = sums / max(seen, 1)
            entry: dict[str, Any] = {
                "epoch": epoch,
                "steps": step,
                "loss": round(float(mean[0]), 5),
                "box": round(float(mean[1]), 5),
                "objectness": round(float(mean[2]), 5),
                "classes": round(float(mean[3]), 5),
                "elapsed_s": round(time.monotonic() - start, 1),
            }
            last_epoch = epoch == config.epochs - 1 or step >= total
            if config.val_images and ((epoch + 1) % config.val_every == 0 or last_epoch):
                m50, m5095 = validation_map(ema.model, config.img_size, config.val_images)
                entry["val_map50"], entry["val_map50_95"] = round(m50, 4), round(m5095, 4)
            history.append(entry)
            log(json.dumps(entry))
            partial = saved.with_suffix(".tmp")
            torch.save(
                {
                    "model": model.state_dict(),
                    "ema": ema.model.state_dict(),
                    "ema_updates": ema.updates,
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch,
                    "step": step,
                    "anchors": anchors,
                    "history": history,
                },
                partial,
            )
            partial.replace(saved)  # a kill mid-write keeps the previous epoch's state
    if rank != 0:
        return None
    wall = time.monotonic() - start
    exported = ema.model.float().eval()
    exported.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    save_safe(
        exported,
        config.out,
        names=list(CLASS_NAMES),
        img_size=config.inference_size,
        # the serving default is the best vector kind of the ROI pooling study (kind 7 in
        # docs/demo-detector.md): the head inputs' RoIAlign over the central half of the box,
        # concatenated; the family's single default layer is near chance for this model
        feature_layers=list(exported.parsed.lead_inputs),
        roi_fraction=CENTRAL_FRACTION,
        extra={
            "trained_by": "demo.training.trainer",
            "training": config.as_dict() | {"loss": asdict(config.loss)},
            "steps": step,
            "wall_time_s": round(wall, 1),
            "threads": config.threads,
            "workers": world,
            "history": history,
        },
    )
    log(f"wrote {config.out} after {step} steps in {wall:.0f} s")
    return TrainResult(config.out, step, wall, history, last_loss)
