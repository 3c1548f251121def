"""Which members of a source are annotation files, and which image each one labels.

Input: the member names of a source and a way to read one. Output: the labels of each image
member, and for each annotation file its outcome (used, or failed with a stable code). The
rules are documented in ``docs/labels.md``; members that are not recognised as annotations
are left alone (ingested as before: skipped when they are not images).
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from shared.annotations import coco, voc, yolo
from shared.annotations.model import AMBIGUOUS, UNMATCHED, AnnotationError, ImageLabels, LabelBox

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
ANNOTATION_SUFFIXES = frozenset({".txt", ".json", ".xml", ".names", ".yaml", ".yml"})
# When two files of different formats label one image, the first of these wins.
PRECEDENCE = ("coco", "voc", "yolo")

Reader = Callable[[str], bytes]


def is_candidate(member: str) -> bool:
    """Whether a member may be an annotation file (its bytes are worth reading)."""
    return PurePosixPath(member).suffix.lower() in ANNOTATION_SUFFIXES


@dataclass(frozen=True)
class FileOutcome:
    """An annotation file's fate: ``code`` None when its labels were used."""

    code: str | None
    message: str


@dataclass
class Catalog:
    labels: dict[str, ImageLabels] = field(default_factory=dict)  # image member → labels
    files: dict[str, FileOutcome] = field(default_factory=dict)  # annotation member → outcome


class _Images:
    """The image members of a source, looked up the ways annotation files name them."""

    def __init__(self, members: Iterable[str]) -> None:
        self.paths = {m for m in members if PurePosixPath(m).suffix.lower() in IMAGE_SUFFIXES}
        self.by_stem: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.by_name: dict[str, list[str]] = defaultdict(list)
        for m in sorted(self.paths):
            p = PurePosixPath(m)
            self.by_stem[(str(p.parent), p.stem)].append(m)
            self.by_name[p.name].append(m)

    def named(self, folder: str, file_name: str) -> list[str]:
        """An image named by a path in an annotation file kept in ``folder``: relative to
        that folder, else as a path from the source root, else by a unique path suffix."""
        file_name = file_name.replace("\\", "/")
        if file_name.startswith("./"):
            file_name = file_name[2:]
        for candidate in (posixpath.normpath(posixpath.join(folder, file_name)), file_name):
            if candidate in self.paths:
                return [candidate]
        base = PurePosixPath(file_name).name
        tail = "/" + file_name
        by_tail = [m for m in self.by_name.get(base, []) if m.endswith(tail)]
        return by_tail or list(self.by_name.get(base, []))

    def stem(self, folders: Iterable[str], stem: str) -> list[str]:
        found: list[str] = []
        for folder in folders:
            found.extend(m for m in self.by_stem.get((folder, stem), []) if m not in found)
        return found


def _folder(member: str) -> str:
    return str(PurePosixPath(member).parent)


def _label_folders(folder: str) -> list[str]:
    """Where the image of a YOLO file in ``folder`` may be: the same folder, and for a
    ``labels`` folder its ``images`` twin and its parent (``a/labels/x`` → ``a/images/x``,
    ``a/x``)."""
    parts = PurePosixPath(folder).parts
    folders = [folder]
    if "labels" in parts:
        i = len(parts) - 1 - parts[::-1].index("labels")
        for twin in ((*parts[:i], "images", *parts[i + 1 :]), (*parts[:i], *parts[i + 1 :])):
            folders.append(str(PurePosixPath(*twin)) if twin else ".")
    return folders


class _Builder:
    def __init__(self, members: list[str], read: Reader) -> None:
        self.images = _Images(members)
        self.read = read
        self.catalog = Catalog()
        self.class_lists = sorted(m for m in members if yolo.is_class_list(m))
        self.used_lists: dict[str, int] = defaultdict(int)
        # image → (format, file) of each file labelling it, in the order found
        self.found: dict[str, list[tuple[str, str, list[LabelBox]]]] = defaultdict(list)
        self.normalized: dict[str, bool] = {}

    def fail(self, member: str, code: str, message: str) -> None:
        self.catalog.files[member] = FileOutcome(code, message)

    def class_names(self, member: str) -> tuple[str | None, list[str] | None]:
        """The nearest class list: in the YOLO file's folder or one above it."""
        folder: str | None = _folder(member)
        while folder is not None:
            lists = sorted(
                (m for m in self.class_lists if _folder(m) == folder),
                key=lambda m: (PurePosixPath(m).name.lower() not in yolo.CLASS_LIST_NAMES, m),
            )
            if lists:
                source = lists[0]
                try:
                    return source, yolo.parse_class_list(source, self.read(source))
                except AnnotationError as exc:
                    # The list fails on its own item; the labels naming it cannot be used.
                    self.fail(source, exc.code, exc.message)
                    raise AnnotationError(
                        exc.code, f"{member}: its class list {source} cannot be used"
                    ) from None
            folder = None if folder == "." else _folder(folder)
        return None, None

    def add(self, image: str, fmt: str, file: str, boxes: list[LabelBox]) -> None:
        self.found[image].append((fmt, file, boxes))

    def yolo_file(self, member: str) -> None:
        data = self.read(member)
        if not yolo.looks_like_yolo(data):
            return  # a text file that is not labels (a README): not ours
        p = PurePosixPath(member)
        images = self.images.stem(_label_folders(str(p.parent)), p.stem)
        if not images:
            self.fail(member, UNMATCHED, f"{member}: no image named {p.stem}.* for these labels")
            return
        if len(images) > 1:
            self.fail(member, AMBIGUOUS, f"{member}: could label {', '.join(images)}")
            return
        names_file, names = self.class_names(member)
        boxes = yolo.parse_labels(member, data, names)
        if names_file is not None:
            self.used_lists[names_file] += 1
        self.add(images[0], "yolo", member, boxes)

    def coco_file(self, member: str) -> None:
        data = self.read(member)
        if not coco.looks_like_coco(data):
            return
        parsed = coco.parse(member, data)
        resolved: dict[str, list[LabelBox]] = {}
        missing = 0
        for file_name, boxes in parsed.items():
            images = self.images.named(_folder(member), file_name)
            if len(images) > 1:
                self.fail(
                    member, AMBIGUOUS, f"{member}: '{file_name}' could be {', '.join(images[:3])}"
                )
                return
            if not images:
                missing += 1
                continue
            resolved[images[0]] = boxes
        if not resolved and parsed:
            self.fail(
                member, UNMATCHED, f"{member}: none of its {len(parsed)} images is in the source"
            )
            return
        for image, boxes in resolved.items():
            self.add(image, "coco", member, boxes)
        if missing:
            self.catalog.files[member] = FileOutcome(
                None, f"{member}: {missing} of its {len(parsed)} images are not in the source"
            )

    def voc_file(self, member: str) -> None:
        data = self.read(member)
        if not voc.looks_like_voc(data):
            return
        parsed = voc.parse(member, data)
        folder, p = _folder(member), PurePosixPath(member)
        images: list[str] = []
        if parsed.filename:
            images = self.images.named(folder, parsed.filename)
            if not images and p.parent.name == "Annotations":
                images = self.images.named(str(p.parent.parent / "JPEGImages"), parsed.filename)
        if not images:
            twins = [folder] + (
                [str(p.parent.parent / "JPEGImages")] if p.parent.name == "Annotations" else []
            )
            images = self.images.stem(twins, p.stem)
        if not images:
            self.fail(
                member,
                UNMATCHED,
                f"{member}: no image {parsed.filename or p.stem + '.*'} in the source",
            )
        elif len(images) > 1:
            self.fail(member, AMBIGUOUS, f"{member}: could label {', '.join(images[:3])}")
        else:
            self.add(images[0], "voc", member, parsed.boxes)

    def settle(self) -> None:
        """One annotation file per image: a second file of the same format labelling an image
        fails as ambiguous; one of another format is superseded (recorded, not used)."""
        superseded: dict[str, list[str]] = defaultdict(list)
        for image, found in self.found.items():
            found.sort(key=lambda f: PRECEDENCE.index(f[0]))
            fmt, file, boxes = found[0]
            for other_fmt, other, _ in found[1:]:
                if other_fmt == fmt and other != file:
                    self.fail(other, AMBIGUOUS, f"{other}: {image} is labelled by {file} too")
                elif other != file:
                    superseded[other].append(file)
            if self.catalog.files.get(file, FileOutcome(None, "")).code is None:
                self.catalog.labels[image] = ImageLabels(file, fmt, fmt == "yolo", boxes)
        for file, winners in superseded.items():
            if file not in self.catalog.files:
                self.catalog.files[file] = FileOutcome(
                    None, f"{file}: not used, its image is labelled by {sorted(set(winners))[0]}"
                )
        # An image whose chosen file failed (ambiguous) keeps no labels from it.
        for image, labels in list(self.catalog.labels.items()):
            if self.catalog.files.get(labels.file, FileOutcome(None, "")).code is not None:
                del self.catalog.labels[image]
        labelled = {lab.file for lab in self.catalog.labels.values()}
        for found in self.found.values():
            for _, file, _ in found:
                if file not in self.catalog.files and file in labelled:
                    self.catalog.files[file] = FileOutcome(None, f"{file}: labels used")
        for name, count in self.used_lists.items():
            self.catalog.files.setdefault(
                name, FileOutcome(None, f"{name}: class names for {count} label file(s)")
            )


def build_catalog(members: Iterable[str], read: Reader) -> Catalog:
    """Recognise annotation files among ``members`` and match them to their images.

    ``read(member)`` returns a member's bytes; it may raise :class:`AnnotationError` (a file
    that cannot be read fails with that code)."""
    names = list(members)
    builder = _Builder(names, read)
    parsers = {".json": builder.coco_file, ".xml": builder.voc_file, ".txt": builder.yolo_file}
    for member in names:
        parse = parsers.get(PurePosixPath(member).suffix.lower())
        if parse is None or yolo.is_class_list(member):
            continue
        try:
            parse(member)
        except AnnotationError as exc:
            builder.fail(member, exc.code, exc.message)
    builder.settle()
    return builder.catalog
