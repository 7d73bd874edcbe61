"""The synthetic Karpathy splits, also under the captioning reader's format name."""

from __future__ import annotations

from .karpathy import write_karpathy
from .writers import WRITERS

WRITERS.register("karpathy_caption")(write_karpathy)
