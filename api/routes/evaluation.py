"""The active collection's detections against its labels: mAP per class (issue 20)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.dependencies import ResourcesDep
from api.errors import ApiError
from api.schemas import ErrorResponse
from shared.evaluation.collection import EvaluationError, evaluate

router = APIRouter(tags=["evaluation"])
ERRORS: dict[int | str, dict[str, Any]] = {422: {"model": ErrorResponse}}


@router.get(
    "/v1/evaluation",
    responses=ERRORS,
    summary="The detector against the labels: mAP@0.5 and @0.5:0.95 per class",
)
def get_evaluation(
    resources: ResourcesDep,
    space_id: Annotated[
        int | None, Query(ge=1, le=2**62, description="Embedding space (default: the only one)")
    ] = None,
) -> dict[str, Any]:
    """The stored detections of the labelled images (imported COCO/YOLO/VOC boxes) matched to
    the labelled boxes of the same class name: per class the ground truth and detection
    counts, AP at IoU 0.5 and averaged over 0.5:0.95, the precision-recall curve at 0.5 (one
    point per detection, by descending score) and the matching (detection id → label id, IoU,
    score). 422 ``no_labelled_images`` when nothing is labelled."""
    with resources.db.read() as session:
        try:
            return evaluate(session, space_id)
        except EvaluationError as exc:
            raise ApiError(422, exc.code, exc.message) from None
