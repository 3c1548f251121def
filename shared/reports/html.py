"""The visual cluster report: one self-contained HTML page (no external resource at all).

Rendered with jinja2 (autoescaped) from the report's result JSON plus exemplar crops given as
``data:`` URIs. The page holds the overall figures, an inline SVG 2-D map (PCA) of a sample of
the objects coloured by cluster, cluster sizes, and per cluster its class mix, exemplar crops
(nearest the centre), outliers and source ingestions, and the near-duplicate groups of objects
and of images.
"""

from __future__ import annotations

import colorsys
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

# 20 well-separated colours first (Tableau-like), then golden-angle hues.
_BASE_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173",
    "#3182bd", "#e6550d", "#31a354", "#756bb1",
)  # fmt: skip
NOISE_COLOUR = "#b0b0b0"
MAP_WIDTH = 720
MAP_HEIGHT = 480
MAP_PAD = 16
MAX_CLUSTER_CARDS = 200
DUPLICATE_GROUPS_SHOWN = 20
DUPLICATE_MEMBERS_SHOWN = 8


def cluster_colour(label: int) -> str:
    if label < 0:
        return NOISE_COLOUR
    if label < len(_BASE_COLOURS):
        return _BASE_COLOURS[label]
    hue = (label * 0.618033988749895) % 1.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.45, 0.65)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def class_colour(class_id: int) -> str:
    """A colour per class id, the same in every cluster (lighter than the cluster colours)."""
    hue = (0.08 + class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hls_to_rgb(hue, 0.6, 0.55)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("shared.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _map_view(result: dict[str, Any]) -> dict[str, Any]:
    """SVG coordinates of the map points and centres (y grows downwards in SVG)."""
    projection = result.get("map") or {}
    points = projection.get("points") or []
    centres = projection.get("centres") or []
    xs = [p[0] for p in points] + [c[1] for c in centres]
    ys = [p[1] for p in points] + [c[2] for c in centres]
    if not xs:
        return {"points": [], "centres": [], "width": MAP_WIDTH, "height": MAP_HEIGHT}
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (MAP_WIDTH - 2 * MAP_PAD) / ((x1 - x0) or 1.0)
    sy = (MAP_HEIGHT - 2 * MAP_PAD) / ((y1 - y0) or 1.0)

    def at(x: float, y: float) -> tuple[float, float]:
        return round(MAP_PAD + (x - x0) * sx, 1), round(MAP_HEIGHT - MAP_PAD - (y - y0) * sy, 1)

    return {
        "width": MAP_WIDTH,
        "height": MAP_HEIGHT,
        "points": [
            {"xy": at(p[0], p[1]), "colour": cluster_colour(int(p[2])), "label": p[2], "id": p[3]}
            for p in points
        ],
        "centres": [
            {"xy": at(c[1], c[2]), "label": c[0], "colour": cluster_colour(int(c[0]))}
            for c in centres
        ],
        "explained": projection.get("explained_variance") or [0.0, 0.0],
    }


def render_report_html(
    report_id: int,
    result: dict[str, Any],
    crops: dict[int, str],
    pictures: dict[int, str] | None = None,
    *,
    generated_at: datetime | None = None,
) -> str:
    """The page for a finished report; ``crops``: object id → data URI, ``pictures``: image id
    → data URI of the whole image (both may be partial)."""
    clusters = sorted(result.get("clusters", []), key=lambda c: (-c["size"], c["id"]))
    largest = max((c["size"] for c in clusters), default=1) or 1
    cards = []
    for cluster in clusters[:MAX_CLUSTER_CARDS]:
        size = cluster["size"] or 1
        cards.append(
            {
                **cluster,
                "colour": cluster_colour(cluster["id"]),
                "bar": round(100.0 * cluster["size"] / largest, 1),
                "mix": [
                    {
                        **c,
                        "share": round(100.0 * c["count"] / size, 1),
                        "colour": class_colour(int(c["class_id"])),
                    }
                    for c in cluster["classes"][:8]
                ],
            }
        )
    duplicates = result.get("duplicates") or {}
    image_dups = result.get("image_duplicates") or {}
    template = _environment().get_template("report.html.j2")
    return template.render(
        report_id=report_id,
        generated_at=(generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        result=result,
        overall=result.get("overall", {}),
        selection=result.get("selection", {}),
        k_info=result.get("k", {}),
        clusters=cards,
        hidden_clusters=max(0, len(clusters) - MAX_CLUSTER_CARDS),
        map=_map_view(result),
        duplicates=duplicates,
        duplicate_groups=(duplicates.get("groups") or [])[:DUPLICATE_GROUPS_SHOWN],
        duplicate_members=DUPLICATE_MEMBERS_SHOWN,
        image_duplicates=image_dups,
        image_duplicate_groups=(image_dups.get("groups") or [])[:DUPLICATE_GROUPS_SHOWN],
        crops=crops,
        pictures=pictures or {},
        noise_colour=NOISE_COLOUR,
    )


def objects_to_crop(result: dict[str, Any]) -> list[int]:
    """Object ids whose crops the page shows (exemplars, outliers, duplicate groups)."""
    ids: list[int] = []
    clusters = sorted(result.get("clusters", []), key=lambda c: (-c["size"], c["id"]))
    for cluster in clusters[:MAX_CLUSTER_CARDS]:
        ids.extend(o["object_id"] for o in cluster["exemplars"])
        ids.extend(o["object_id"] for o in cluster["outliers"])
    groups = (result.get("duplicates") or {}).get("groups") or []
    for group in groups[:DUPLICATE_GROUPS_SHOWN]:
        ids.extend(group["object_ids"][:DUPLICATE_MEMBERS_SHOWN])
    return ids


def images_to_show(result: dict[str, Any]) -> list[int]:
    """Image ids whose thumbnails the page shows (image-level near-duplicate groups)."""
    groups = (result.get("image_duplicates") or {}).get("groups") or []
    return [
        i for g in groups[:DUPLICATE_GROUPS_SHOWN] for i in g["image_ids"][:DUPLICATE_MEMBERS_SHOWN]
    ]
