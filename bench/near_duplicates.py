"""Near-duplicates on the demo collection: precision and recall on the planted pairs.

    .venv/bin/python -m bench.near_duplicates       # the `make demo` archive (120, seed 7)
    .venv/bin/python -m bench.near_duplicates --n 240 --seed 11 --calibrate

Generates the demo dataset with planted near-duplicates (:mod:`demo.planting`: one pasted
object per odd scene — exact, JPEG re-encoded, resized x0.5–2, shifted ≤ 10 % — and an image
copy every 40th image), ingests it with the bundled demo detector (SQLite, in this process),
runs the clustering report with its default near-duplicate settings, and scores the groups
against the ground truth:

* a planted pair is *detectable* when both its boxes are detected (a detection of IoU ≥ 0.5 in
  the right image); ground truth is the transitive closure of the planted pairs (a pasted
  object whose scene is later copied as an image forms a chain), with every detection of an
  image copy that maps onto a detection of its source under the recorded transform (labelled or
  not), and two boxes of one image on one object (the report's rule: a detector naming one
  object under two classes) counted as that object;
* **recall**: detectable planted pairs whose two detections share a reported group;
* **precision**: of the object pairs sharing a reported group, the share that are planted;
* **false groups**: reported groups holding no planted pair at all;
* the same for the planted image copies on the image-level groups.

``--calibrate`` also prints, for every candidate pair from the vectors at a low threshold, the
vector similarity and the crop match of planted and other pairs, and precision/recall over a
grid of both thresholds (how the defaults were chosen).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy import select

from demo.export import write_dataset
from shared.db import migrations
from shared.db.database import Database
from shared.db.models import DetectedObject, IngestionItem, Report
from shared.ingestion.supervisor import IngestionSupervisor
from shared.model_provider import ModelProvider
from shared.reports.graphs import connected_components
from shared.reports.job import create_cluster_report, run_cluster_report
from shared.reports.near_duplicates import same_object
from shared.reports.params import ClusterParams
from shared.settings import Settings, load_settings

Pair = tuple[int, int]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box a [4] with boxes b [n, 4] (x1, y1, x2, y2)."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.asarray(inter / np.maximum(union, 1e-9))


class Truth:
    """Planted pairs mapped onto the stored objects and images of one ingested collection."""

    def __init__(self, db: Database, scenes: Path) -> None:
        object_pairs = json.loads((scenes / "near_duplicate_objects.json").read_text())
        image_pairs = json.loads((scenes / "near_duplicates.json").read_text())
        with db.read() as session:
            self.image_of = {
                Path(member).name: int(image_id)
                for member, image_id in session.execute(
                    select(IngestionItem.member, IngestionItem.image_id)
                ).all()
                if image_id is not None
            }
            rows = session.execute(
                select(
                    DetectedObject.id,
                    DetectedObject.image_id,
                    DetectedObject.x1,
                    DetectedObject.y1,
                    DetectedObject.x2,
                    DetectedObject.y2,
                )
            ).all()
        self.objects = len(rows)
        boxes: dict[int, list[tuple[int, list[float]]]] = defaultdict(list)
        for r in rows:
            boxes[int(r[1])].append((int(r[0]), [r[2], r[3], r[4], r[5]]))
        self.planted = len(object_pairs)
        self.kinds: dict[Pair, str] = {}
        edges: list[Pair] = []
        missed: dict[str, int] = defaultdict(int)
        for pair in object_pairs:
            ends = [self._detections(boxes, pair[side]) for side in ("original", "duplicate")]
            if not ends[0] or not ends[1]:
                missed[pair["kind"]] += 1
                continue
            a, b = sorted((ends[0][0], ends[1][0]))  # the best-matching detections
            self.kinds[(a, b)] = pair["kind"]
            # every detection of either box (a detector naming one object twice) is the object
            edges.extend((ends[0][0], o) for o in ends[0][1:] + ends[1])
        self.undetected = dict(missed)
        self.image_pairs: set[tuple[int, ...]] = set()
        for copy in image_pairs:
            source = self.image_of[Path(copy["original"]).name]
            target = self.image_of[Path(copy["duplicate"]).name]
            self.image_pairs.add(tuple(sorted((source, target))))
            edges.extend(_carried(copy, boxes.get(source, []), boxes.get(target, [])))
        for found in boxes.values():  # two boxes on one object (two classes): one object
            ids = np.array([o for o, _ in found], dtype=np.int64)
            frame = np.array([b for _, b in found], float).reshape(-1, 4)
            first, second = np.triu_indices(len(found), 1)
            one = same_object(frame[first], frame[second])
            edges.extend(zip(ids[first[one]].tolist(), ids[second[one]].tolist(), strict=True))
        self.object_class = _classes(edges)

    def _detections(
        self, boxes: dict[int, list[tuple[int, list[float]]]], end: dict[str, Any]
    ) -> list[int]:
        """Detections of IoU ≥ 0.5 with the planted box, the best first."""
        image_id = self.image_of.get(Path(end["image"]).name)
        found = boxes.get(image_id or -1, [])
        if not found:
            return []
        overlap = iou(np.array(end["box"], float), np.array([b for _, b in found], float))
        order = np.argsort(-overlap, kind="stable")
        return [found[i][0] for i in order.tolist() if overlap[i] >= 0.5]

    def same(self, a: int, b: int) -> bool:
        ca, cb = self.object_class.get(a), self.object_class.get(b)
        return ca is not None and ca == cb


def _carried(
    copy: dict[str, Any],
    source: list[tuple[int, list[float]]],
    target: list[tuple[int, list[float]]],
) -> list[Pair]:
    """Detections of an image copy that are detections of its source under the recorded
    transform (IoU ≥ 0.5), labelled or not: the same pixels, so planted too."""
    if not source or not target:
        return []
    left, top = copy["crop_ltrb"][0], copy["crop_ltrb"][1]
    shift = np.array([left, top, left, top], float)
    boxes = np.array([b for _, b in target], float)
    pairs = []
    for object_id, box in source:
        overlap = iou(np.array(box, float) * copy["scale"] - shift, boxes)
        best = int(overlap.argmax())
        if overlap[best] >= 0.5:
            pairs.append((object_id, target[best][0]))
    return pairs


def _classes(edges: list[Pair]) -> dict[int, int]:
    """object id → ground-truth class (connected components of the planted pairs)."""
    nodes = sorted({n for e in edges for n in e})
    row = {n: i for i, n in enumerate(nodes)}
    left = np.array([row[a] for a, _ in edges], dtype=np.int64)
    right = np.array([row[b] for _, b in edges], dtype=np.int64)
    labels = connected_components(len(nodes), left, right)
    return {n: int(labels[i]) for n, i in row.items()}


def score_objects(truth: Truth, groups: list[dict[str, Any]]) -> dict[str, Any]:
    group_of = {o: g for g, group in enumerate(groups) for o in group["object_ids"]}
    together = [(a, b) for group in groups for a, b in combinations(sorted(group["object_ids"]), 2)]
    correct = sum(truth.same(a, b) for a, b in together)
    false_groups = sum(
        not any(truth.same(a, b) for a, b in combinations(g["object_ids"], 2)) for g in groups
    )
    found_by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (a, b), kind in truth.kinds.items():
        hit = a in group_of and group_of.get(a) == group_of.get(b)
        found_by_kind[kind][0] += int(hit)
        found_by_kind[kind][1] += 1
    found = sum(v[0] for v in found_by_kind.values())
    detectable = sum(v[1] for v in found_by_kind.values())
    return {
        "planted_pairs": truth.planted,
        "detectable_pairs": detectable,
        "undetected_pairs": truth.undetected,
        "found_pairs": found,
        "recall": round(found / max(detectable, 1), 4),
        "grouped_pairs": len(together),
        "precision": round(correct / max(len(together), 1), 4),
        "groups": len(groups),
        "false_groups": false_groups,
        "recall_by_kind": {k: f"{v[0]}/{v[1]}" for k, v in sorted(found_by_kind.items())},
    }


def score_images(truth: Truth, summary: dict[str, Any] | None) -> dict[str, Any]:
    if summary is None:
        return {"image_vectors": False}
    groups = summary["groups"]
    together = {tuple(sorted(p)) for g in groups for p in combinations(g["image_ids"], 2)}
    correct = len(together & truth.image_pairs)
    return {
        "images": summary["images"],
        "planted_pairs": len(truth.image_pairs),
        "found_pairs": len(truth.image_pairs & together),
        "recall": round(len(truth.image_pairs & together) / max(len(truth.image_pairs), 1), 4),
        "precision": round(correct / max(len(together), 1), 4),
        "groups": len(groups),
        "false_groups": sum(
            not any(tuple(sorted(p)) in truth.image_pairs for p in combinations(g["image_ids"], 2))
            for g in groups
        ),
        "candidate_pairs": summary["candidate_pairs"],
    }


def ingest(root: Path, n: int, seed: int) -> tuple[Database, Settings, Path]:
    """The collection under ``root`` (generated and ingested unless already there)."""
    scenes = root / "scenes"
    url = f"sqlite:///{root / 'roisearch.db'}"
    settings = load_settings(data_dir=root / "data", database_url=url, chunk_size=16)
    if (root / "ingested").is_file():
        return Database.from_url(url), settings, scenes
    write_dataset(scenes, n, seed)
    migrations.upgrade(url)
    db = Database.from_url(url)
    supervisor = IngestionSupervisor(db, settings.ingestion_config())
    plan = supervisor.start(scenes / "images")
    supervisor.run(plan, ModelProvider(settings.detector_config()))
    (root / "ingested").touch()
    return db, settings, scenes


def report(db: Database, settings: Settings, params: ClusterParams) -> dict[str, Any]:
    report_id = create_cluster_report(db, params)
    run_cluster_report(db, settings.report_config(), report_id)
    with db.read() as session:
        row = session.get(Report, report_id)
        assert row is not None and row.result is not None, row and row.error_message
        return dict(row.result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=120, help="images (make demo: 120)")
    parser.add_argument("--seed", type=int, default=7, help="scene stream (make demo: 7)")
    parser.add_argument("--calibrate", action="store_true", help="threshold grid")
    parser.add_argument("--match", type=float, help="duplicate_match (default: the report's)")
    parser.add_argument(
        "--similarity", type=float, help="duplicate_similarity (default: the report's)"
    )
    parser.add_argument(
        "--keep", type=Path, help="keep the ingested collection in this folder (and reuse it)"
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="bench-dupes-") as tmp:
        start = time.perf_counter()
        db, settings, scenes = ingest(args.keep or Path(tmp), args.n, args.seed)
        truth = Truth(db, scenes)
        seconds = time.perf_counter() - start
        print(f"ingested {args.n} images, {truth.objects} objects in {seconds:.0f} s")
        groups_all: dict[str, Any] = {"max_duplicate_groups": 10_000}
        figures: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "n": args.n,
            "seed": args.seed,
            "objects": truth.objects,
        }
        start = time.perf_counter()
        if args.match is not None:
            groups_all["duplicate_match"] = args.match
        if args.similarity is not None:
            groups_all["duplicate_similarity"] = args.similarity
        result = report(db, settings, ClusterParams(**groups_all))
        figures["report_s"] = round(time.perf_counter() - start, 1)
        figures["timings_s"] = result["timings_s"]
        dups = result["duplicates"]
        figures["objects_confirmed"] = score_objects(truth, dups["groups"]) | {
            "candidate_pairs": dups["candidate_pairs"],
            "objects_in_groups": dups["objects_in_groups"],
        }
        figures["images_confirmed"] = score_images(truth, result["image_duplicates"])
        old = report(
            db,
            settings,
            ClusterParams(
                duplicate_similarity=0.97, duplicate_match=None, max_duplicate_groups=10_000
            ),
        )
        figures["objects_vectors_only_0.97"] = score_objects(truth, old["duplicates"]["groups"]) | {
            "objects_in_groups": old["duplicates"]["objects_in_groups"]
        }
        if args.calibrate:
            from bench.near_duplicates_calibration import calibrate

            figures["calibration"] = calibrate(db, settings, truth)
        db.dispose()
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
