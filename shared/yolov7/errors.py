"""Errors raised by the YOLOv7 engine (each names the file or item and the reason)."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every engine error."""


class ConfigError(EngineError):
    """An architecture description is invalid or uses something we do not support."""


class CheckpointError(EngineError):
    """A weights file cannot be read as a YOLOv7 checkpoint (message names the file)."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle references a global outside the allow-list; nothing from it was executed."""
