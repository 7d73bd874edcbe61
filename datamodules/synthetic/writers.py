"""Synthetic-world writers by data format (used by configs with `synthetic.enabled: true`).

A writer is `write(root, splits: dict[str, int], seed=0, image_size=64, test_splits=None) -> dict`:
`splits` maps the format's split names (from the config's *_split keys) to sizes; `test_splits` the
question-only ones. Register with `@WRITERS.register("<format>")` in a module of this package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vltasks.registry import Registry

WRITERS: Registry[Callable[..., dict[str, Any]]] = Registry("synthetic writer")
