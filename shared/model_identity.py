"""Which model a process runs, said the same way by the API, the web page and the CLI.

The bundled demo detector only knows nine generated shapes; on a real photo it still labels
things with confident-looking scores. Every surface that shows results says so, with the one
notice below, and names the way to real weights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

OFFICIAL_WEIGHTS_DOC = "docs/official-weights.md"
OFFICIAL_RELEASES = "https://github.com/WongKinYiu/yolov7/releases"
DEMO_NAME = "bundled demo detector"


def demo_notice(class_count: int | None) -> str:
    """The one-line notice shown wherever the demo detector's results are shown."""
    shapes = f"{class_count} generated shapes" if class_count else "generated shapes"
    return (
        f"Demo model: the bundled detector only knows {shapes}, not real-world objects. "
        "For real photos set ROISEARCH_WEIGHTS to official YOLOv7 weights (yolov7.pt, "
        f"yolov7-tiny.pt, … from {OFFICIAL_RELEASES}); see {OFFICIAL_WEIGHTS_DOC}."
    )


@dataclass(frozen=True)
class ModelIdentity:
    """Name, classes (when known) and whether this is the demo detector."""

    name: str
    demo: bool
    class_names: tuple[str, ...] | None

    @property
    def notice(self) -> str | None:
        if not self.demo:
            return None
        return demo_notice(len(self.class_names) if self.class_names is not None else None)

    def line(self) -> str:
        """``model: NAME, 9 classes (circle, square, …) — demo`` for CLI summaries."""
        if self.class_names is None:
            classes = "classes known once loaded"
        else:
            shown = ", ".join(self.class_names[:12])
            more = ", …" if len(self.class_names) > 12 else ""
            classes = f"{len(self.class_names)} classes ({shown}{more})"
        kind = "demo model" if self.demo else "custom weights"
        return f"model: {self.name}, {classes}; {kind}"


def is_demo(weights: Path | None) -> bool:
    """Unset weights, or the bundled file named explicitly, mean the demo detector."""
    from shared.yolov7.detector import DEMO_WEIGHTS

    return weights is None or weights.resolve() == DEMO_WEIGHTS.resolve()


def model_name(weights: Path | None) -> str:
    """The model's display name, without reading any file (for frequent checks)."""
    from shared.yolov7.detector import DEMO_WEIGHTS

    path = DEMO_WEIGHTS if weights is None else weights
    return f"{DEMO_NAME} ({path.name})" if is_demo(weights) else path.name


def _sidecar_names(weights: Path) -> tuple[str, ...] | None:
    """Class names from a .safetensors file's JSON beside it (no model is built)."""
    from shared.yolov7.safe_format import sidecar_path

    try:
        doc = json.loads(sidecar_path(weights).read_text())
    except (OSError, ValueError):
        return None
    names = doc.get("names") if isinstance(doc, dict) else None
    return tuple(str(n) for n in names) if isinstance(names, list) else None


def model_identity(weights: Path | None, class_names: Sequence[str] | None = None) -> ModelIdentity:
    """The identity of the model ``weights`` (None: the demo detector).

    ``class_names``: the loaded model's; without them a .safetensors file's are read from
    its JSON, and a .pt file's stay unknown (reading them means unpickling the checkpoint).
    """
    from shared.yolov7.detector import DEMO_WEIGHTS

    path = DEMO_WEIGHTS if weights is None else weights
    names: tuple[str, ...] | None
    if class_names is not None:
        names = tuple(class_names)
    elif path.suffix == ".safetensors":
        names = _sidecar_names(path)
    else:
        names = None
    return ModelIdentity(name=model_name(weights), demo=is_demo(weights), class_names=names)
