"""Labelled datasets for tests: the demo generator's scenes written as YOLO, COCO or Pascal
VOC in a folder, zip or tar, and a helper that ingests one with the real pipeline."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from demo.export import write_dataset
from demo.shapes import CLASS_NAMES
from shared.db.database import Database
from shared.ingestion.supervisor import IngestionSupervisor
from shared.settings import Settings
from shared.yolov7.detector import Detector
from tests.shared.ingestion.archives import write_tar, write_zip
from tests.shared.ingestion.scenarios import Models, ProbeDetector


def demo_scenes(root: Path, count: int) -> dict[str, Any]:
    """The demo generator's scenes: image bytes, YOLO files, COCO document."""
    write_dataset(root, count, seed=5)
    coco = json.loads((root / "annotations.json").read_text())
    return {
        "images": {p.name: p.read_bytes() for p in sorted((root / "images").iterdir())},
        "yolo": {p.name: p.read_bytes() for p in sorted((root / "labels").iterdir())},
        "classes": (root / "classes.txt").read_bytes(),
        "coco": coco,
    }


def expected_labels(coco: dict[str, Any]) -> Counter[str]:
    names = {c["id"]: c["name"] for c in coco["categories"]}
    return Counter(names[a["category_id"]] for a in coco["annotations"])


def voc_files(coco: dict[str, Any]) -> dict[str, bytes]:
    names = {c["id"]: c["name"] for c in coco["categories"]}
    out = {}
    for image in coco["images"]:
        objects = "".join(
            f"<object><name>{names[a['category_id']]}</name><bndbox>"
            f"<xmin>{a['bbox'][0]}</xmin><ymin>{a['bbox'][1]}</ymin>"
            f"<xmax>{a['bbox'][0] + a['bbox'][2]}</xmax><ymax>{a['bbox'][1] + a['bbox'][3]}</ymax>"
            "</bndbox></object>"
            for a in coco["annotations"]
            if a["image_id"] == image["id"]
        )
        stem = Path(image["file_name"]).stem
        xml = f"<annotation><filename>{Path(image['file_name']).name}</filename>{objects}"
        out[f"{stem}.xml"] = (xml + "</annotation>").encode()
    return out


def members(scenes: dict[str, Any], fmt: str) -> dict[str, bytes]:
    images, coco = scenes["images"], scenes["coco"]
    if fmt == "yolo":  # images/ + labels/ twins, names from data.yaml
        names = ", ".join(CLASS_NAMES)
        return {
            **{f"ds/images/{n}": b for n, b in images.items()},
            **{f"ds/labels/{n}": b for n, b in scenes["yolo"].items()},
            "ds/data.yaml": f"train: images\nnames: [{names}]\n".encode(),
        }
    if fmt == "coco":
        return {
            **{f"images/{n}": b for n, b in images.items()},
            "annotations.json": json.dumps(coco).encode(),
        }
    return {  # Pascal VOC layout
        **{f"VOC/JPEGImages/{n}": b for n, b in images.items()},
        **{f"VOC/Annotations/{n}": b for n, b in voc_files(coco).items()},
    }


def write_source(directory: Path, kind: str, files: dict[str, bytes]) -> Path:
    if kind == "zip":
        return write_zip(directory / "set.zip", files.items())
    if kind == "tar":
        return write_tar(directory / "set.tar.gz", files.items(), "w:gz")
    root = directory / "set"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def ingest(
    settings: Settings, detector: Detector | ProbeDetector, source: Path, **options: str
) -> tuple[Database, int]:
    db = Database.from_url(settings.resolved_database_url)
    supervisor = IngestionSupervisor(db, settings.ingestion_config())
    plan = supervisor.start(source, options=dict(options) or None)
    supervisor.run(plan, Models(settings, detector))
    return db, plan.ingestion_id
