"""One error format for every error the API returns, and the one map from errors to statuses.

Every non-2xx response body is ``{"error": {"code": str, "message": str, "details": ...}}``: the
coded errors of every layer (:mod:`shared.errors`, mapped to a status by their class in
:func:`http_status`; :class:`ApiError` names its own), validation errors, unknown routes (404),
wrong methods (405), middleware rejections (401, 413, 503) and unexpected exceptions (500).
Messages name the item and the reason; they never contain server paths or stack traces
(unexpected exceptions are logged server-side and answered with a generic message).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

from shared.errors import CodedError, Conflict, InvalidInput, NotFound, Unavailable, Unsupported

log = logging.getLogger(__name__)

STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


# By class, most specific first: an error may be of two kinds (a file that is not an image is
# both invalid input and unsupported; the status says the more specific).
HTTP_STATUS: tuple[tuple[type[CodedError], int], ...] = (
    (NotFound, 404),
    (Unsupported, 415),
    (Conflict, 409),
    (Unavailable, 503),
    (InvalidInput, 422),
)


class ApiError(CodedError):
    """An HTTP-only error with its own status (paging limits, overload, upload size)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, details)
        self.status = status
        self.headers = dict(headers or {})


def http_status(exc: CodedError) -> int:
    """The HTTP status of a coded error: its own for :class:`ApiError`, else by class."""
    if isinstance(exc, ApiError):
        return exc.status
    for kind, status in HTTP_STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def not_found(kind: str, item_id: int | str) -> NotFound:
    return NotFound(f"{kind}_not_found", f"{kind} {item_id} does not exist")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, details), status_code=status, headers=dict(headers or {})
    )


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Send an error response from pure-ASGI middleware (no Request object, body unread)."""
    body = json.dumps(error_body(code, message, details)).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: echoing "input" could return a huge or binary payload.
    return [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]


async def _coded_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CodedError)
    headers = exc.headers if isinstance(exc, ApiError) else None
    return error_response(http_status(exc), exc.code, exc.message, exc.details, headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
    if exc.status_code == 404:
        message = f"no route for {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc)
    where = ", ".join(".".join(d["loc"]) + ": " + d["msg"] for d in details[:3])
    return error_response(422, "validation_error", f"invalid request: {where}", details)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error; the event was logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CodedError, _coded_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
