"""Errors raised by the YOLOv7 engine (each names the file or item and the reason).

They belong to the error family of :mod:`shared.errors`: the code comes from the class, and
``str()`` is the message alone, as before they joined it.
"""

from __future__ import annotations

from typing import ClassVar

from shared.errors import CodedError, InvalidInput


class EngineError(CodedError):
    """Base class of every engine error."""

    default_code: ClassVar[str] = "engine_error"

    def __init__(self, message: str) -> None:
        super().__init__(self.default_code, message)

    def __str__(self) -> str:
        return self.message


class ConfigError(EngineError, InvalidInput):
    """An architecture description is invalid or uses something we do not support."""

    default_code = "invalid_model_config"


class CheckpointError(EngineError, InvalidInput):
    """A weights file cannot be read as a YOLOv7 checkpoint (message names the file)."""

    default_code = "invalid_checkpoint"


class UnsafeCheckpointError(CheckpointError):
    """A pickle references a global outside the allow-list; nothing from it was executed."""

    default_code = "unsafe_checkpoint"
