"""Readers of official dataset formats, the synthetic world, and the LightningDataModule."""

from __future__ import annotations

from vltasks.datamodules import vqav2  # noqa: F401  (registers the reader)
from vltasks.datamodules.base import READERS, BadSampleError, Problems, TaskData
from vltasks.datamodules.datamodule import UnrepeatedDistributedSampler, VLDataModule

__all__ = ["READERS", "BadSampleError", "Problems", "TaskData", "UnrepeatedDistributedSampler", "VLDataModule"]
