"""The model serving query-by-image: weights, classes, embedding space, layer table."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter
from pydantic import BaseModel

from api.dependencies import ResourcesDep
from api.resources import Resources
from api.schemas import ErrorResponse, ModelOut
from shared.model_identity import model_identity

router = APIRouter(tags=["model"])
ERRORS: dict[int | str, dict[str, Any]] = {503: {"model": ErrorResponse}}


class LayerOut(BaseModel):
    index: int
    type: str
    source: str
    shape: str
    channels: int
    stride: float
    parameters: int
    roi_suitable: bool
    note: str
    pooled: bool


class LayersOut(BaseModel):
    input_size: int
    feature_layers: list[int]
    layers: list[LayerOut]


def _model_info(resources: Resources) -> ModelOut:
    detector = resources.detector()
    spec = detector.space
    space_id = resources.search.space_id(spec.key)
    weights = resources.settings.weights
    identity = model_identity(weights, spec.class_names)
    return ModelOut(
        weights=weights.name if weights is not None else "bundled demo detector",
        weights_sha256=spec.weights_sha256,
        architecture=spec.architecture,
        class_names=list(spec.class_names),
        input_size=spec.input_size,
        feature_layers=list(spec.layers),
        pooling=spec.pooling,
        dim=spec.dim,
        space_key=spec.key,
        space_id=space_id,
        device=str(detector.device),
        demo=identity.demo,
        notice=identity.notice,
    )


def _layers(resources: Resources) -> LayersOut:
    from shared.yolov7.inspection import inspect_layers

    cached = resources.cache.get("layers")
    if isinstance(cached, LayersOut):
        return cached
    detector = resources.detector()
    rows = inspect_layers(detector.model, detector.img_size)
    pooled = set(detector.layers)
    table = LayersOut(
        input_size=detector.img_size,
        feature_layers=list(detector.layers),
        layers=[
            LayerOut(
                **{k: v for k, v in dataclasses.asdict(row).items() if k != "shape_text"},
                shape=row.shape_text,
                pooled=row.index in pooled,
            )
            for row in rows
        ],
    )
    resources.cache["layers"] = table
    return table


@router.get("/v1/model", response_model=ModelOut, responses=ERRORS, summary="The serving model")
async def get_model(resources: ResourcesDep) -> ModelOut:
    """Weights (file name and sha256), classes and embedding space (loads the model if needed)."""
    return await anyio.to_thread.run_sync(
        partial(_model_info, resources), limiter=resources.model_limiter
    )


@router.get(
    "/v1/model/layers",
    response_model=LayersOut,
    responses=ERRORS,
    summary="The engine's layer table (which layers can be ROI-pooled)",
)
async def get_layers(resources: ResourcesDep) -> LayersOut:
    """Every layer: type, inputs, output shape, channels, stride, ROI suitability, pooled."""
    return await anyio.to_thread.run_sync(
        partial(_layers, resources), limiter=resources.model_limiter
    )
