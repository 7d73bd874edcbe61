"""Captioning metrics (COCO caption evaluation protocol)."""

__all__: list[str] = []
