"""The one map from the error family to HTTP statuses (api/errors.py)."""

from __future__ import annotations

import pytest

from api.errors import ApiError, http_status
from shared.errors import CodedError, Conflict, InvalidInput, NotFound, Unavailable, Unsupported
from shared.imaging.decoding import ImageDecodeError, UnsupportedImageError
from shared.ingestion.sources import MemberError, SourceError
from shared.reports.errors import ReportError
from shared.selection import SelectionError
from shared.yolov7.errors import CheckpointError, ConfigError, EngineError, UnsafeCheckpointError


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("object_not_found", "m"), 404),
        (InvalidInput("invalid_box", "m"), 422),
        (Unsupported("x", "m"), 415),
        (Conflict("report_not_done", "m"), 409),
        (Unavailable("model_unavailable", "m"), 503),
        (ReportError("k_too_large", "m"), 422),
        (SelectionError("unknown_class", "m"), 422),
        (SourceError("not_found", "m"), 422),
        (MemberError("too_large", "m"), 422),
        # A broken image is invalid input; one that is not an image at all is unsupported
        # (both are decoding errors: the more specific kind decides).
        (ImageDecodeError("corrupt", "m"), 422),
        (UnsupportedImageError("not_an_image", "m"), 415),
        (CheckpointError("weights.pt is not a checkpoint"), 422),
        (ApiError(413, "payload_too_large", "m"), 413),
        (CodedError("unclassified", "m"), 500),
    ],
)
def test_statuses_follow_the_error_class(error: CodedError, status: int) -> None:
    assert http_status(error) == status


def test_engine_errors_take_their_code_from_the_class_and_print_the_message() -> None:
    unsafe = UnsafeCheckpointError("x.pt references os.system")
    assert (unsafe.code, str(unsafe)) == ("unsafe_checkpoint", "x.pt references os.system")
    assert isinstance(unsafe, CheckpointError) and isinstance(unsafe, InvalidInput)
    assert ConfigError("m").code == "invalid_model_config"
    assert EngineError("m").code == "engine_error" and http_status(EngineError("m")) == 500
