"""Start an ingestion from a request: a multipart upload or a JSON ``{"path": …}``.

Uploads are already bounded by the body-size middleware (``ROISEARCH_MAX_UPLOAD_BYTES``) before
this code runs. The uploaded files are copied into ``settings.uploads_dir`` (shared with the
workers) under a fresh directory, then the ingestion is planned in the database and queued by
the ingestion package, exactly as ``roisearch ingest`` does.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from functools import partial
from pathlib import Path

import anyio
from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.errors import ApiError
from api.resources import Resources
from api.schemas import IngestionPathRequest
from shared.ingestion.label_rows import BoxSource
from shared.ingestion.sources import SourceError, check_inside_roots

MAX_UPLOAD_FILES = 10_000
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, index: int) -> str:
    """A file name without directories or odd characters (the original is kept as source)."""
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).strip("._") or "upload"
    return f"{index:05d}-{base[-120:]}"


async def start_from_request(request: Request, resources: Resources) -> int:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return await _from_path(request, resources)
    if content_type == "multipart/form-data":
        return await _from_upload(request, resources)
    raise ApiError(
        415,
        "unsupported_media_type",
        "send multipart/form-data with 'files', or application/json with {\"path\": ...}",
    )


async def _from_path(request: Request, resources: Resources) -> int:
    try:
        body = IngestionPathRequest.model_validate(json.loads(await request.body()))
    except (ValueError, ValidationError) as exc:
        details = exc.errors(include_input=False) if isinstance(exc, ValidationError) else None
        raise ApiError(
            422,
            "validation_error",
            'the body must be {"path": "<path in an import root>"}',
            json.loads(json.dumps(details, default=str)) if details else None,
        ) from None
    return await anyio.to_thread.run_sync(partial(plan_path, resources, body.path, body.boxes))


async def _from_upload(request: Request, resources: Resources) -> int:
    try:
        form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=100)
    except Exception as exc:  # malformed multipart framing
        raise ApiError(
            400, "bad_multipart", f"the multipart body cannot be parsed: {exc}"
        ) from None
    try:
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        boxes = _boxes(form.get("boxes"))
        if not files:
            raise ApiError(
                422, "no_files", "upload one archive or one or more images in the 'files' field"
            )
        directory = resources.settings.uploads_dir / uuid.uuid4().hex
        return await anyio.to_thread.run_sync(
            partial(_save_and_plan, resources, directory, files, boxes)
        )
    finally:
        await form.close()


def _boxes(value: object) -> BoxSource:
    """The multipart ``boxes`` field (default both)."""
    if value is None:
        return BoxSource.BOTH
    try:
        return BoxSource(str(value))
    except ValueError:
        choices = ", ".join(b.value for b in BoxSource)
        raise ApiError(422, "validation_error", f"'boxes' must be one of {choices}") from None


def _save_and_plan(
    resources: Resources, directory: Path, files: list[UploadFile], boxes: BoxSource
) -> int:
    directory.mkdir(parents=True, exist_ok=False)
    try:
        names: list[tuple[Path, str]] = []
        for i, upload in enumerate(files):
            original = upload.filename or f"file-{i}"
            target = directory / safe_name(original, i)
            with target.open("wb") as out:
                shutil.copyfileobj(upload.file, out, 1024 * 1024)
            names.append((target, original))
        return plan_upload(resources, directory, names, boxes)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _start(
    resources: Resources,
    source: Path,
    display_name: str,
    origin: str,
    upload_names: dict[str, str] | None = None,
    boxes: BoxSource = BoxSource.BOTH,
) -> int:
    """Create, plan and enqueue an ingestion of ``source`` (blocking; planning enumerates it).

    ``upload_names``: saved file name -> the name it was uploaded as (several files), shown
    as the images' source instead of the server's upload path; ``boxes``: which boxes become
    objects (labelled, detected, or both).
    """
    options: dict[str, object] = {
        "display_name": display_name,
        "origin": origin,
        "boxes": boxes.value,
    }
    if upload_names:
        options["upload_names"] = upload_names
    plan = resources.supervisor.submit(source, options=options)
    return plan.ingestion_id


def plan_path(resources: Resources, path: str, boxes: BoxSource = BoxSource.BOTH) -> int:
    """A server-side path, confined to the import roots (real paths, component-wise).

    Messages quote the caller's own string, never the resolved server path.
    """
    roots = resources.settings.import_roots
    given = Path(path)
    if not given.is_absolute() and roots:
        given = roots[0] / given
    try:
        real = check_inside_roots(given, roots)
    except SourceError as exc:
        if exc.code == "source_not_found":
            raise ApiError(404, exc.code, f"{path!r} does not exist") from None
        if exc.code == "invalid_path":
            raise ApiError(422, exc.code, f"{path!r}: {exc.message}") from None
        if not roots:
            raise ApiError(403, exc.code, exc.message) from None
        raise ApiError(
            403, exc.code, f"{path!r} is outside the import roots (ROISEARCH_IMPORT_ROOTS)"
        ) from None
    try:
        return _start(resources, real, display_name=path[-500:], origin="path", boxes=boxes)
    except SourceError as exc:
        # Raised before the ingestion exists (its kind is decided by stat, never by opening a
        # FIFO or a device): nothing was created.
        if exc.code == "not_regular_file":
            raise ApiError(
                422,
                exc.code,
                f"{path!r} is not a regular file or a folder (a FIFO, device or socket)",
            ) from None
        if exc.code == "source_not_found":  # removed since the check above
            raise ApiError(404, exc.code, f"{path!r} does not exist") from None
        raise


def plan_upload(
    resources: Resources,
    directory: Path,
    files: list[tuple[Path, str]],
    boxes: BoxSource = BoxSource.BOTH,
) -> int:
    """One uploaded archive is ingested as that archive; several files as a folder."""
    if len(files) == 1:
        source, display = files[0][0], files[0][1]
        return _start(resources, source, display_name=display[-500:], origin="upload", boxes=boxes)
    names = {path.name: original[-500:] for path, original in files}
    return _start(
        resources,
        directory,
        display_name=f"upload of {len(files)} files",
        origin="upload",
        upload_names=names,
        boxes=boxes,
    )
