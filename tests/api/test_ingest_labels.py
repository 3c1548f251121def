"""Ingesting a labelled dataset through the API (issue 20): the ``boxes`` option of a path
and of an upload, and the labelled boxes as objects of the image."""

from __future__ import annotations

import io
import zipfile

from fastapi.testclient import TestClient

from tests.api.test_ingestions import ingest_client, wait_done
from tests.factories import png_bytes

__all__ = ["ingest_client"]  # the fixture, shared with test_ingestions


def labelled_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(2):
            archive.writestr(f"ds/images/{i}.png", png_bytes(80, 60, 20 + i))
            archive.writestr(f"ds/labels/{i}.txt", "0 0.5 0.5 0.5 0.5\n1 0.25 0.25 0.2 0.2\n")
        archive.writestr("ds/classes.txt", "cat\ndog\n")
        archive.writestr("ds/labels/stray.txt", "0 0.5 0.5 0.5 0.5\n")
    return buffer.getvalue()


def test_upload_with_boxes_labels_makes_label_objects_only(ingest_client: TestClient) -> None:
    response = ingest_client.post(
        "/v1/ingestions",
        files={"files": ("ds.zip", labelled_zip(), "application/zip")},
        data={"boxes": "labels"},
    )
    assert response.status_code == 202, response.text
    body = wait_done(ingest_client, response.json()["id"])
    # 2 images, 2 label files and the class list done; the stray label file failed
    assert body["counts"]["done"] == 5 and body["counts"]["failed"] == 1
    assert body["failed_items"][0]["error_code"] == "annotation_unmatched"
    images = ingest_client.get("/v1/images", params={"ingestion_id": body["id"]}).json()
    for image in images["images"]:
        detail = ingest_client.get(f"/v1/images/{image['id']}").json()
        objects = detail["objects"]
        assert sorted(o["label_class"] for o in objects) == ["cat", "dog"]
        assert all(o["origin"] == "label" and o["class_id"] < 0 for o in objects)
        cat = next(o for o in objects if o["label_class"] == "cat")
        assert cat["box"] == {"x1": 20.0, "y1": 15.0, "x2": 60.0, "y2": 45.0}


def test_boxes_option_is_validated(ingest_client: TestClient) -> None:
    bad = ingest_client.post(
        "/v1/ingestions",
        files={"files": ("ds.zip", labelled_zip(), "application/zip")},
        data={"boxes": "everything"},
    )
    assert bad.status_code == 422 and "'boxes' must be one of" in bad.json()["error"]["message"]
    bad_json = ingest_client.post("/v1/ingestions", json={"path": "x", "boxes": "all"})
    assert bad_json.status_code == 422


def test_evaluation_of_the_detector_against_the_labels(ingest_client: TestClient) -> None:
    nothing = ingest_client.get("/v1/evaluation")
    assert nothing.status_code == 422
    assert nothing.json()["error"]["code"] == "no_labelled_images"
    response = ingest_client.post(
        "/v1/ingestions", files={"files": ("ds.zip", labelled_zip(), "application/zip")}
    )
    wait_done(ingest_client, response.json()["id"])
    result = ingest_client.get("/v1/evaluation").json()
    assert result["images"] == 2 and result["iou_thresholds"][0] == 0.5
    assert {c["class"]: c["ground_truth"] for c in result["classes"]} == {"cat": 2, "dog": 2}
    for c in result["classes"]:
        assert set(c) == {
            "class",
            "ground_truth",
            "detections",
            "ap50",
            "ap50_95",
            "pr_curve",
            "matches",
        }
        # the random-weight fixture model finds nothing above its threshold in these images
        assert c["ap50"] == 0.0 and c["detections"] == 0
