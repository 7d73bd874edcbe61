"""The LightningModule that wraps one shared backbone with one or many heads."""

from vltasks.tasks.module import VLTaskModule

__all__ = ["VLTaskModule"]
