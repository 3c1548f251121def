"""A restricted unpickler for official YOLOv7 ``.pt`` files.

``torch.load`` of an untrusted pickle can execute arbitrary code, because unpickling calls
whatever global the file names. This module is passed to ``torch.load`` as its
``pickle_module``: its :class:`Unpickler` resolves only an allow-list of harmless globals
(tensor rebuilding, ordered dicts, sets, numpy array reconstruction) and replaces every class
of the upstream code base and of ``torch.nn.modules`` by an inert :class:`PickledObject` that
merely stores its pickled state. Any other global (``os.system``, ``subprocess.Popen``,
``builtins.eval``, ...) raises :class:`UnsafeCheckpointError` before it is called.

Upstream classes are never executed, so the loader does not depend on the upstream package
and is immune to attribute drift between torch versions.
"""

from __future__ import annotations

import _codecs
import collections
import pickle
from typing import IO, Any, ClassVar

import numpy as np
import torch
import torch._utils

from shared.yolov7.errors import UnsafeCheckpointError

# Prefixes whose classes are replaced by inert stand-ins (never imported, never executed).
_STAND_IN_PREFIXES = ("models.", "utils.", "torch.nn.modules.")


def _numpy_global(module: str, name: str) -> Any:
    core = getattr(np, "_core", None) or np.core
    table: dict[str, Any] = {
        "_reconstruct": core.multiarray._reconstruct,
        "scalar": core.multiarray.scalar,
    }
    return table[name]


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs.encode,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
}
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
_TORCH_DTYPES = {
    "float16",
    "float32",
    "float64",
    "bfloat16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
}


class PickledObject:
    """Inert stand-in for a pickled module object: keeps its state, runs none of its code.

    ``qualified_name`` is the dotted name of the class it stands for (for example
    ``models.common.Conv``); ``state`` is the pickled instance ``__dict__``.
    """

    qualified_name: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        # Some objects pickle (dict_state, slot_state); keep the dict part.
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]
        self.state = dict(state) if isinstance(state, dict) else {"__state__": state}

    def __getstate__(self) -> dict[str, Any]:  # copy.deepcopy round-trips the pickled state
        return self.state

    def get(self, key: str, default: Any = None) -> Any:
        return self.state.get(key, default)

    @property
    def short_name(self) -> str:
        return self.qualified_name.rsplit(".", 1)[-1]

    def __repr__(self) -> str:
        return f"<pickled {self.qualified_name}>"


class Unpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` is an allow-list (see the module docstring)."""

    def __init__(self, file: IO[bytes], *args: Any, **kwargs: Any) -> None:
        super().__init__(file, *args, **kwargs)
        self._stand_ins: dict[str, type[PickledObject]] = {}

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        if module in _NUMPY_MODULES and name in {"_reconstruct", "scalar"}:
            return _numpy_global(module, name)
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(torch, name)
        if module.startswith(_STAND_IN_PREFIXES) and name.isidentifier():
            dotted = f"{module}.{name}"
            cls = self._stand_ins.get(dotted)
            if cls is None:
                cls = type(name, (PickledObject,), {"qualified_name": dotted})
                self._stand_ins[dotted] = cls
            return cls
        raise UnsafeCheckpointError(
            f"refused global {module}.{name}: it is not something a YOLOv7 checkpoint needs "
            "(the file may be malicious); nothing was executed"
        )


def load(file: IO[bytes], **kwargs: Any) -> Any:
    """Module-level ``load`` (``torch.load`` calls it for legacy files' magic number)."""
    return Unpickler(file, **kwargs).load()


def loads(data: bytes, **kwargs: Any) -> Any:
    import io

    return Unpickler(io.BytesIO(data), **kwargs).load()


# torch.load looks these up on the pickle module it is given.
__all__ = ["PickledObject", "Unpickler", "load", "loads"]
