"""Readers of official dataset formats, the synthetic world, and the LightningDataModule.

Every reader module of this package registers itself (@READERS.register) and is imported here.
"""

from __future__ import annotations

from vltasks.datamodules.base import READERS, BadSampleError, Problems, TaskData
from vltasks.datamodules.datamodule import UnrepeatedDistributedSampler, VLDataModule

from vltasks.registry import import_submodules

import_submodules(__name__, skip=("base", "checks", "datamodule", "media", "synthetic"))

__all__ = [
    "READERS",
    "BadSampleError",
    "Problems",
    "TaskData",
    "UnrepeatedDistributedSampler",
    "VLDataModule",
]
