"""Task heads, found by name: a new task is a head file here (registered with @HEADS.register),
a reader, a YAML and nothing else; every module of this package is imported on first use."""

from __future__ import annotations

from vltasks.heads.base import HEADS, Head

from vltasks.registry import import_submodules

import_submodules(__name__)

from vltasks.heads.vqa import VQAHead  # noqa: E402

__all__ = ["HEADS", "Head", "VQAHead"]
