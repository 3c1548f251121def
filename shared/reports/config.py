"""What report jobs need of the settings: one frozen config, built once at the entry point by
``Settings.report_config()`` (the report components never see the whole settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReportConfig:
    """``reports_dir``: where each report's files go; ``data_dir``: the image store its crops
    are read from (decoded within ``max_image_pixels``); ``report_threads``: FAISS (OpenMP)
    threads of the clustering."""

    reports_dir: Path
    data_dir: Path
    max_image_pixels: int
    report_threads: int
