"""One LightningDataModule for one or many tasks; exact (unpadded) evaluation under DDP."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler, SequentialSampler
from vltasks.datamodules.base import BadSampleError, TaskData
from vltasks.datamodules.media import CollateLoaded

from vltasks.batch import FAILED

if TYPE_CHECKING:
    from vltasks.config import DataSpec

log = logging.getLogger(__name__)


class UnrepeatedDistributedSampler(Sampler[int]):
    """Rank r takes indices r, r+W, r+2W, ...: shards may differ by one, no sample is repeated.

    DistributedSampler pads with duplicates so every rank has the same length; for evaluation that
    counts some samples twice (REFERENCE.md, "Distributed evaluation").
    """

    def __init__(self, dataset_len: int, num_replicas: int, rank: int) -> None:
        self.n, self.num_replicas, self.rank = dataset_len, num_replicas, rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.num_replicas))

    def __len__(self) -> int:
        return max(0, math.ceil((self.n - self.rank) / self.num_replicas))


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class VLDataModule(L.LightningDataModule):
    """Train: one loader per task cycled together (max_size_cycle). Eval: one loader per task.

    Samples whose media fail to load come out of the collate as ``failed`` (datamodules/media.py);
    before a batch reaches the model, ``data.on_bad_sample=error`` raises the first one's named
    error, ``skip`` logs each sample once, counts it per task and split, and drops it (a batch left
    empty becomes None, which the model steps over).
    """

    def __init__(
        self,
        tasks: dict[str, TaskData],
        processor: Any,
        collate_args: dict[str, dict[str, Any]],
        specs: dict[str, DataSpec],
        seed: int = 0,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        """``specs[task]``: the task's resolved data settings (batch sizes, workers, bad-sample policy);
        ``collate_args[task]``: what its head asks of the collate (``Head.collate_args``);
        ``prepare``: what `prepare_data` runs (writing the synthetic world; idempotent)."""
        super().__init__()
        self.tasks, self.processor, self.collate_args = tasks, processor, collate_args
        self.specs = specs
        self.seed = seed
        self.prepare = prepare
        self._failed: dict[str, set[str]] = defaultdict(set)  # "task/split" -> sample ids

    @property
    def task_names(self) -> list[str]:
        return list(self.tasks)

    def prepare_data(self) -> None:
        """Once per node (Lightning calls it on local rank 0): the synthetic world, when configured."""
        if self.prepare is not None:
            self.prepare()

    def _loader(self, name: str, stage: str, train: bool) -> DataLoader:
        data, spec = self.tasks[name], self.specs[name]
        ds = data.dataset(data.samples(stage))
        world, rank = _world()
        sampler: Sampler[int]
        if train:
            if world > 1:
                sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=self.seed)
            else:
                sampler = RandomSampler(ds, generator=torch.Generator().manual_seed(self.seed))
        else:
            sampler = (
                UnrepeatedDistributedSampler(len(ds), world, rank) if world > 1 else SequentialSampler(ds)
            )
        return DataLoader(
            ds,
            batch_size=spec.batch_size if train else spec.eval_batch_size,
            sampler=sampler,
            collate_fn=CollateLoaded(data.collate(self.processor, self.collate_args[name])),
            num_workers=spec.num_workers,
            persistent_workers=spec.num_workers > 0,
            drop_last=False,
        )

    def train_dataloader(self) -> CombinedLoader:
        return CombinedLoader({n: self._loader(n, "train", True) for n in self.tasks}, mode="max_size_cycle")

    def val_dataloader(self) -> list[DataLoader]:
        return [self._loader(n, "val", False) for n in self.tasks]

    def test_dataloader(self) -> list[DataLoader]:
        return [self._loader(n, "test", False) for n in self.tasks]

    def predict_dataloader(self) -> list[DataLoader]:
        return [self._loader(n, "predict", False) for n in self.tasks]

    # -- samples that failed to load -------------------------------------------------------------
    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        running = self.trainer.state.stage if self.trainer is not None else None
        stage = _STAGES.get(running.value) if running is not None else None
        if stage == "train":
            return {n: self.screen(n, stage, b) for n, b in batch.items()}
        return self.screen(self.task_names[dataloader_idx], stage or "eval", batch)

    def screen(self, name: str, stage: str, batch: dict[str, Any] | None) -> dict[str, Any] | None:
        """Apply the bad-sample policy to a batch's failed samples; None when none is left."""
        if batch is None:
            return None
        failed = batch.pop(FAILED, None)
        if failed:
            if self.specs[name].on_bad_sample == "error":
                raise BadSampleError(f"{failed[0][1]} (set data.on_bad_sample=skip to skip such samples)")
            seen = self._failed[f"{name}/{self.tasks[name].splits.get(stage) or stage}"]
            for sid, message in failed:
                if sid not in seen:
                    log.warning("skipped (could not be loaded): %s", message)
                    seen.add(sid)
        return batch if batch["sample_id"] else None

    def failed_counts(self, trainer: L.Trainer | None = None) -> dict[str, int]:
        """Distinct samples dropped at load time, per "task/split", over every process."""
        failed = {k: sorted(v) for k, v in self._failed.items()}
        if trainer is not None and trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            parts: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(parts, failed)
            failed = {}
            for part in parts:
                for k, ids in part.items():
                    failed[k] = sorted(set(failed.get(k, [])) | set(ids))
        return {k: len(v) for k, v in sorted(failed.items()) if v}

    def skipped_counts(self) -> dict[str, int]:
        """Records skipped when the splits were read, per "task/split"."""
        return {f"{n}/{split}": c for n, d in self.tasks.items() for split, c in d.skipped.items()}


_STAGES = {
    "train": "train",
    "sanity_check": "val",
    "validate": "val",
    "test": "test",
    "predict": "predict",
}
