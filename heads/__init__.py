"""Task heads, found by name (a new task is a head, a reader, a YAML and a registry line)."""

from __future__ import annotations

from vltasks.heads.base import Head
from vltasks.heads.vqa import VQAHead
from vltasks.registry import Registry

HEADS: Registry[type[Head]] = Registry("head")
HEADS.register("vqa")(VQAHead)

__all__ = ["HEADS", "Head", "VQAHead"]
