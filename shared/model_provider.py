"""Lazy, locked loading of the process's one Detector (built on first use, then shared)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from shared.compute_plan import compute_plan

if TYPE_CHECKING:
    from shared.yolov7.detector import Detector
    from shared.yolov7.detector_config import DetectorConfig


class ModelProvider:
    """Holds at most one Detector per process; ``get()`` loads it once, thread-safely.

    Loading is deferred so that processes that never run the model (CLI clients, an API that
    only serves object-id searches) do not pay for it, while a worker calls ``get()`` at start
    to load it before taking jobs.
    """

    def __init__(self, config: DetectorConfig, *, throughput: bool = False) -> None:
        """``config``: the engine's narrow config (``Settings.detector_config()``).
        ``throughput``: a process that ingests (worker, ``roisearch ingest``) splits its
        threads into inference streams (:mod:`shared.compute_plan`); otherwise (the API: one
        query image at a time, latency first) one stream gets every thread."""
        self.config = config
        self._throughput = throughput
        self._lock = threading.Lock()
        self._detector: Detector | None = None
        self._streams = 1

    @property
    def loaded(self) -> bool:
        return self._detector is not None

    def get(self) -> Detector:
        detector = self._detector
        if detector is not None:
            return detector
        with self._lock:
            if self._detector is None:
                import torch

                from shared.yolov7.detector import Detector

                detector = Detector.load(self.config)
                if self._throughput:
                    plan = compute_plan(self.config, cuda=detector.device.type == "cuda")
                    torch.set_num_threads(plan.threads)
                    self._streams = plan.streams
                elif self.config.torch_threads:
                    torch.set_num_threads(self.config.torch_threads)
                self._detector = detector
            return self._detector

    @property
    def streams(self) -> int:
        """Batches to run through the model at once (1 until the model is loaded)."""
        return self._streams
