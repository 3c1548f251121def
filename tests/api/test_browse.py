"""Browse routes on a real database (both backends) and the real index."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from PIL import Image as PILImage

from shared.db.models import Ingestion, IngestionItem, IngestionStatus
from tests.api.conftest import resources_of
from tests.factories import Seeded


def test_images_list_detail_file_and_detections(client: TestClient, seeded: Seeded) -> None:
    listing = client.get("/v1/images", params={"page_size": 4}).json()
    assert listing["page"] == {"page": 1, "page_size": 4, "total": len(seeded.image_ids)}
    assert [i["id"] for i in listing["images"]] == seeded.image_ids[:4]
    second = client.get("/v1/images", params={"page_size": 4, "page": 2}).json()
    assert [i["id"] for i in second["images"]] == seeded.image_ids[4:]
    by_ingestion = client.get("/v1/images", params={"ingestion_id": seeded.ingestion_id}).json()
    assert by_ingestion["page"]["total"] == len(seeded.image_ids)
    assert client.get("/v1/images", params={"ingestion_id": 999}).json()["page"]["total"] == 0

    image_id = seeded.image_ids[0]
    detail = client.get(f"/v1/images/{image_id}").json()
    assert detail["width"] == 96 and detail["height"] == 64 and detail["object_count"] == 3
    assert [o["ordinal"] for o in detail["objects"]] == [0, 1, 2]
    assert "storage_path" not in detail and "/" not in detail["sha256"]

    original = client.get(detail["file_url"])
    assert original.status_code == 200 and original.headers["content-type"] == "image/png"
    assert PILImage.open(io.BytesIO(original.content)).size == (96, 64)

    drawn = client.get(detail["detections_url"], params={"max_side": 64})
    assert drawn.status_code == 200 and drawn.headers["content-type"] == "image/jpeg"
    assert max(PILImage.open(io.BytesIO(drawn.content)).size) == 64

    assert client.get("/v1/images/123456").json()["error"]["code"] == "image_not_found"
    assert client.get("/v1/images/123456/file").status_code == 404


def test_objects_and_cached_crops(client: TestClient, seeded: Seeded) -> None:
    settings = resources_of(client).settings
    listing = client.get("/v1/objects", params={"image_id": seeded.image_ids[1]}).json()
    assert listing["page"]["total"] == 3
    cats = client.get("/v1/objects", params={"class_name": "cat"}).json()
    assert cats["objects"] and all(o["class_name"] == "cat" for o in cats["objects"])

    object_id = seeded.object_ids[2]
    obj = client.get(f"/v1/objects/{object_id}").json()
    assert obj["box"] == {"x1": 44.0, "y1": 24.0, "x2": 64.0, "y2": 44.0}
    assert obj["crop_url"] == f"/v1/objects/{object_id}/crop.jpg"

    crop = client.get(obj["crop_url"])
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert PILImage.open(io.BytesIO(crop.content)).size == (20, 20)
    cached = list((settings.cache_dir / "crops").rglob("*.jpg"))
    assert len(cached) == 1
    assert client.get(obj["crop_url"]).content == crop.content  # served from the cache
    assert len(list((settings.cache_dir / "crops").rglob("*.jpg"))) == 1
    small = client.get(obj["crop_url"], params={"size": 16})
    assert max(PILImage.open(io.BytesIO(small.content)).size) == 16
    assert client.get("/v1/objects/424242/crop.jpg").status_code == 404


def test_ingestion_status_and_items(client: TestClient, seeded: Seeded) -> None:
    listing = client.get("/v1/ingestions").json()
    assert [i["id"] for i in listing["ingestions"]] == [seeded.ingestion_id]
    status = client.get(f"/v1/ingestions/{seeded.ingestion_id}").json()
    assert status["counts"] == {"pending": 0, "done": 6, "failed": 0, "skipped": 0}
    assert status["objects_found"] == len(seeded.object_ids)
    assert status["failed_items"] == [] and status["failed_page"]["total"] == 0
    items = client.get(
        f"/v1/ingestions/{seeded.ingestion_id}/items", params={"status": "done", "page_size": 5}
    ).json()
    assert items["page"]["total"] == 6 and len(items["items"]) == 5
    assert client.get("/v1/ingestions/999").json()["error"]["code"] == "ingestion_not_found"


def test_deleting_an_image_removes_its_objects_from_search_at_once(
    client: TestClient, seeded: Seeded
) -> None:
    image_id = seeded.image_ids[0]
    gone = set(seeded.object_ids[:3])
    query = seeded.object_ids[3]
    before = client.get(f"/v1/objects/{query}/similar", params={"k": 50}).json()
    assert gone & {h["object_id"] for h in before["hits"]}

    deleted = client.delete(f"/v1/images/{image_id}").json()
    assert deleted["deleted_images"] == 1 and deleted["deleted_objects"] == 3
    after = client.get(f"/v1/objects/{query}/similar", params={"k": 50}).json()
    assert not gone & {h["object_id"] for h in after["hits"]}
    assert client.get(f"/v1/images/{image_id}").status_code == 404
    assert client.get(f"/v1/objects/{seeded.object_ids[0]}/similar").status_code == 404
    assert client.delete(f"/v1/images/{image_id}").status_code == 404


def test_deleting_an_ingestion_removes_its_objects_from_search(
    client: TestClient, seeded: Seeded
) -> None:
    deleted = client.delete(f"/v1/ingestions/{seeded.ingestion_id}").json()
    assert deleted["deleted_objects"] == len(seeded.object_ids)
    assert client.get("/v1/images").json()["page"]["total"] == 0
    assert client.get(f"/v1/ingestions/{seeded.ingestion_id}").status_code == 404
    status = client.get("/v1/index/status").json()
    for space in status["spaces"]:
        assert space["status"]


def test_running_ingestion_reports_rate_eta_and_failed_items(client: TestClient) -> None:
    resources = resources_of(client)
    with resources.db.begin() as session:
        ingestion = Ingestion(
            source="big.tar",
            source_kind="tar",
            status=IngestionStatus.RUNNING,
            total_items=40,
            started_at=datetime.now(UTC) - timedelta(seconds=30),
        )
        session.add(ingestion)
        session.flush()
        statuses = ["done"] * 24 + ["failed"] * 6 + ["pending"] * 10
        for seq, status in enumerate(statuses):
            session.add(
                IngestionItem(
                    ingestion_id=ingestion.id,
                    member=f"m{seq}.jpg",
                    seq=seq,
                    chunk=seq // 8,
                    status=status,
                    error_code="corrupt_image" if status == "failed" else None,
                    error_message="truncated JPEG" if status == "failed" else None,
                )
            )
        ingestion_id = ingestion.id
    body = client.get(f"/v1/ingestions/{ingestion_id}", params={"page_size": 4}).json()
    assert body["counts"] == {"pending": 10, "done": 24, "failed": 6, "skipped": 0}
    # 30 items finished within the last minute → 0.5 items/s, 10 pending → 20 s left
    assert body["images_per_s"] == 0.5
    assert body["eta_s"] == 20.0
    assert body["failed_page"]["total"] == 6
    assert [i["member"] for i in body["failed_items"]] == [
        "m24.jpg",
        "m25.jpg",
        "m26.jpg",
        "m27.jpg",
    ]
    assert {i["error_code"] for i in body["failed_items"]} == {"corrupt_image"}
    page2 = client.get(f"/v1/ingestions/{ingestion_id}", params={"page_size": 4, "page": 2}).json()
    assert [i["member"] for i in page2["failed_items"]] == ["m28.jpg", "m29.jpg"]


def test_no_image_processed_has_no_rate(client: TestClient) -> None:
    """Issue 19 item 8: an ingestion that processed no image reported 1000.0 images/s."""
    resources = resources_of(client)
    started = datetime.now(UTC)
    with resources.db.begin() as session:
        ingestion = Ingestion(
            source="notes.txt",
            source_kind="file",
            status=IngestionStatus.DONE,
            total_items=1,
            started_at=started,
            finished_at=started,  # it ended at once: elapsed 0, clamped to 1 ms before
        )
        session.add(ingestion)
        session.flush()
        session.add(
            IngestionItem(
                ingestion_id=ingestion.id,
                member="notes.txt",
                seq=0,
                chunk=0,
                status="skipped",
                error_code="not_an_image",
            )
        )
        ingestion_id = ingestion.id
    body = client.get(f"/v1/ingestions/{ingestion_id}").json()
    assert body["counts"]["skipped"] == 1
    assert body["images_per_s"] is None and body["eta_s"] is None
