"""Content hash of model weights, independent of file format and storage dtype."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from torch import Tensor


def state_dict_sha256(state: Mapping[str, Tensor]) -> str:
    """sha256 over sorted keys, shapes and float32 (or integer) bytes of every tensor.

    fp16 → fp32 is exact, so an official fp16 ``.pt`` and its fp32 safetensors conversion
    hash equal; fused and unfused weights differ (they are different numbers).
    """
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu()
        if key.endswith("num_batches_tracked"):
            continue  # training counter, irrelevant to outputs
        t = t.float() if t.is_floating_point() else t
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()
