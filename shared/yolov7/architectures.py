"""Architecture descriptions of the YOLOv7 family as data (for building fresh models).

Written from the layer tables of the clean-room format spec (sections 2.5 and 2.6): rows
``[from, number, module, args]`` in the config language of section 2, the same dict shape
an official checkpoint carries in ``Model.yaml``. Official checkpoints never need these (they
carry their own config); they serve training from scratch, benchmarks and recognising plain
state dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = list[Any]

TINY_ANCHORS = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
YOLOV7_ANCHORS = [
    [12, 16, 19, 36, 40, 28],
    [36, 75, 76, 55, 72, 146],
    [142, 110, 192, 243, 459, 401],
]
LEAKY = "nn.LeakyReLU(0.1)"


def _tiny_conv(c2: int, k: int, s: int = 1) -> list[Any]:
    return [c2, k, s, "None", 1, LEAKY]


def _tiny_elan(c: int, out: int, first_from: int = -1) -> list[Row]:
    """Two 1×1 branches, two stacked 3×3, concat of the four, 1×1 to ``out`` (6 rows)."""
    return [
        [first_from, 1, "Conv", _tiny_conv(c, 1)],
        [-2, 1, "Conv", _tiny_conv(c, 1)],
        [-1, 1, "Conv", _tiny_conv(c, 3)],
        [-1, 1, "Conv", _tiny_conv(c, 3)],
        [[-1, -2, -3, -4], 1, "Concat", [1]],
        [-1, 1, "Conv", _tiny_conv(out, 1)],
    ]


def yolov7_tiny_config(
    nc: int = 80, width_multiple: float = 1.0, head: str = "IDetect"
) -> dict[str, Any]:
    """yolov7-tiny (78 layers; head 77 = IDetect for the training cfg, Detect for deploy)."""
    backbone: list[Row] = [
        [-1, 1, "Conv", _tiny_conv(32, 3, 2)],  # 0
        [-1, 1, "Conv", _tiny_conv(64, 3, 2)],  # 1
        *_tiny_elan(32, 64),  # 2-7
        [-1, 1, "MP", []],  # 8
        *_tiny_elan(64, 128),  # 9-14
        [-1, 1, "MP", []],  # 15
        *_tiny_elan(128, 256),  # 16-21
        [-1, 1, "MP", []],  # 22
        *_tiny_elan(256, 512),  # 23-28
    ]
    head_rows: list[Row] = [
        [-1, 1, "Conv", _tiny_conv(256, 1)],  # 29
        [-2, 1, "Conv", _tiny_conv(256, 1)],  # 30
        [-1, 1, "SP", [5]],  # 31
        [-2, 1, "SP", [9]],  # 32
        [-3, 1, "SP", [13]],  # 33
        [[-1, -2, -3, -4], 1, "Concat", [1]],  # 34
        [-1, 1, "Conv", _tiny_conv(256, 1)],  # 35
        [[-1, -7], 1, "Concat", [1]],  # 36
        [-1, 1, "Conv", _tiny_conv(256, 1)],  # 37
        [-1, 1, "Conv", _tiny_conv(128, 1)],  # 38
        [-1, 1, "nn.Upsample", ["None", 2, "nearest"]],  # 39
        [21, 1, "Conv", _tiny_conv(128, 1)],  # 40
        [[-1, -2], 1, "Concat", [1]],  # 41
        *_tiny_elan(64, 128),  # 42-47
        [-1, 1, "Conv", _tiny_conv(64, 1)],  # 48
        [-1, 1, "nn.Upsample", ["None", 2, "nearest"]],  # 49
        [14, 1, "Conv", _tiny_conv(64, 1)],  # 50
        [[-1, -2], 1, "Concat", [1]],  # 51
        *_tiny_elan(32, 64),  # 52-57
        [-1, 1, "Conv", _tiny_conv(128, 3, 2)],  # 58
        [[-1, 47], 1, "Concat", [1]],  # 59
        *_tiny_elan(64, 128),  # 60-65
        [-1, 1, "Conv", _tiny_conv(256, 3, 2)],  # 66
        [[-1, 37], 1, "Concat", [1]],  # 67
        *_tiny_elan(128, 256),  # 68-73
        [57, 1, "Conv", _tiny_conv(128, 3)],  # 74
        [65, 1, "Conv", _tiny_conv(256, 3)],  # 75
        [73, 1, "Conv", _tiny_conv(512, 3)],  # 76
        [[74, 75, 76], 1, head, ["nc", "anchors"]],  # 77
    ]
    return {
        "nc": nc,
        "depth_multiple": 1.0,
        "width_multiple": width_multiple,
        "anchors": [list(a) for a in TINY_ANCHORS],
        "backbone": backbone,
        "head": head_rows,
    }


def _elan(c: int, out: int) -> list[Row]:
    """yolov7 backbone ELAN: 1×1, 1×1 (from -2), four 3×3, concat(-1,-3,-5,-6), 1×1 (8 rows)."""
    return [
        [-1, 1, "Conv", [c, 1, 1]],
        [-2, 1, "Conv", [c, 1, 1]],
        [-1, 1, "Conv", [c, 3, 1]],
        [-1, 1, "Conv", [c, 3, 1]],
        [-1, 1, "Conv", [c, 3, 1]],
        [-1, 1, "Conv", [c, 3, 1]],
        [[-1, -3, -5, -6], 1, "Concat", [1]],
        [-1, 1, "Conv", [out, 1, 1]],
    ]


def _elan_head(c: int, c3: int, out: int) -> list[Row]:
    """yolov7 neck ELAN-H: 1×1, 1×1 (from -2), four 3×3 of width c3, concat of all six, 1×1."""
    return [
        [-1, 1, "Conv", [c, 1, 1]],
        [-2, 1, "Conv", [c, 1, 1]],
        [-1, 1, "Conv", [c3, 3, 1]],
        [-1, 1, "Conv", [c3, 3, 1]],
        [-1, 1, "Conv", [c3, 3, 1]],
        [-1, 1, "Conv", [c3, 3, 1]],
        [[-1, -2, -3, -4, -5, -6], 1, "Concat", [1]],
        [-1, 1, "Conv", [out, 1, 1]],
    ]


def _mp_block(c: int) -> list[Row]:
    """Down-sampling: max-pool + 1×1 path and 1×1 + strided 3×3 path, concatenated (5 rows)."""
    return [
        [-1, 1, "MP", []],
        [-1, 1, "Conv", [c, 1, 1]],
        [-3, 1, "Conv", [c, 1, 1]],
        [-1, 1, "Conv", [c, 3, 2]],
        [[-1, -3], 1, "Concat", [1]],
    ]


def yolov7_config(
    nc: int = 80, width_multiple: float = 1.0, head: str = "IDetect"
) -> dict[str, Any]:
    """yolov7 (106 layers; head 105 = IDetect for the training cfg, Detect for deploy)."""
    backbone: list[Row] = [
        [-1, 1, "Conv", [32, 3, 1]],  # 0
        [-1, 1, "Conv", [64, 3, 2]],  # 1
        [-1, 1, "Conv", [64, 3, 1]],  # 2
        [-1, 1, "Conv", [128, 3, 2]],  # 3
        *_elan(64, 256),  # 4-11
        *_mp_block(128),  # 12-16
        *_elan(128, 512),  # 17-24
        *_mp_block(256),  # 25-29
        *_elan(256, 1024),  # 30-37
        *_mp_block(512),  # 38-42
        *_elan(256, 1024),  # 43-50
    ]
    head_rows: list[Row] = [
        [-1, 1, "SPPCSPC", [512]],  # 51
        [-1, 1, "Conv", [256, 1, 1]],  # 52
        [-1, 1, "nn.Upsample", ["None", 2, "nearest"]],  # 53
        [37, 1, "Conv", [256, 1, 1]],  # 54
        [[-1, -2], 1, "Concat", [1]],  # 55
        *_elan_head(256, 128, 256),  # 56-63
        [-1, 1, "Conv", [128, 1, 1]],  # 64
        [-1, 1, "nn.Upsample", ["None", 2, "nearest"]],  # 65
        [24, 1, "Conv", [128, 1, 1]],  # 66
        [[-1, -2], 1, "Concat", [1]],  # 67
        *_elan_head(128, 64, 128),  # 68-75
        [-1, 1, "MP", []],  # 76
        [-1, 1, "Conv", [128, 1, 1]],  # 77
        [-3, 1, "Conv", [128, 1, 1]],  # 78
        [-1, 1, "Conv", [128, 3, 2]],  # 79
        [[-1, -3, 63], 1, "Concat", [1]],  # 80
        *_elan_head(256, 128, 256),  # 81-88
        [-1, 1, "MP", []],  # 89
        [-1, 1, "Conv", [256, 1, 1]],  # 90
        [-3, 1, "Conv", [256, 1, 1]],  # 91
        [-1, 1, "Conv", [256, 3, 2]],  # 92
        [[-1, -3, 51], 1, "Concat", [1]],  # 93
        *_elan_head(512, 256, 512),  # 94-101
        [75, 1, "RepConv", [256, 3, 1]],  # 102
        [88, 1, "RepConv", [512, 3, 1]],  # 103
        [101, 1, "RepConv", [1024, 3, 1]],  # 104
        [[102, 103, 104], 1, head, ["nc", "anchors"]],  # 105
    ]
    return {
        "nc": nc,
        "depth_multiple": 1.0,
        "width_multiple": width_multiple,
        "anchors": [list(a) for a in YOLOV7_ANCHORS],
        "backbone": backbone,
        "head": head_rows,
    }


def yolov7_tiny_deploy_config(nc: int = 80, width_multiple: float = 1.0) -> dict[str, Any]:
    return yolov7_tiny_config(nc, width_multiple, head="Detect")


def yolov7_deploy_config(nc: int = 80, width_multiple: float = 1.0) -> dict[str, Any]:
    return yolov7_config(nc, width_multiple, head="Detect")


# Name → factory(nc). Used to recognise plain state dicts and to build benchmark models.
BUILTIN_CONFIGS: dict[str, Callable[[int], dict[str, Any]]] = {
    "yolov7-tiny": yolov7_tiny_config,
    "yolov7-tiny-deploy": yolov7_tiny_deploy_config,
    "yolov7": yolov7_config,
    "yolov7-deploy": yolov7_deploy_config,
}
