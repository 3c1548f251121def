"""Index metadata → hits: float32 values come out as the short decimals they stand for."""

from __future__ import annotations

import json

import numpy as np

from shared.index import ObjectMetadata
from shared.search.hits import IndexedHit, hit_out, indexed_hits


def test_indexed_hits_round_float32_noise_away_and_name_classes() -> None:
    meta = ObjectMetadata(
        ids=np.asarray([5, 9], np.int64),
        image_ids=np.asarray([50, 90], np.int64),
        class_ids=np.asarray([1, 7], np.int32),
        scores=np.asarray([0.6, 0.8734568], np.float32),
        x1=np.asarray([12.3, 1234.5678], np.float32),
        y1=np.asarray([0.1, 0.0], np.float32),
        x2=np.asarray([40.7, 4000.25], np.float32),
        y2=np.asarray([33.35, 3000.001], np.float32),
    )
    hits = indexed_hits(meta, ("cat", "dog"))
    assert hits[5] == IndexedHit(5, 50, 1, "dog", 0.6, 12.3, 0.1, 40.7, 33.35)
    assert hits[9] == IndexedHit(9, 90, 7, "7", 0.8734568, 1234.568, 0.0, 4000.25, 3000.001)
    body = json.loads(hit_out(hits[5], 0.5).model_dump_json())
    assert body["box"] == {"x1": 12.3, "y1": 0.1, "x2": 40.7, "y2": 33.35}
    assert body["detector_score"] == 0.6 and body["class_name"] == "dog"
    assert indexed_hits(ObjectMetadata.empty(), ("cat",)) == {}
