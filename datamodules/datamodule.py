"""One LightningDataModule for one or many tasks; exact (unpadded) evaluation under DDP."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler, SequentialSampler
from vltasks.datamodules.base import TaskData


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
    """Train: one loader per task cycled together (max_size_cycle). Eval: one loader per task."""

    def __init__(
        self,
        tasks: dict[str, TaskData],
        processor: Any,
        head_args: dict[str, dict[str, Any]],
        loader: dict[str, dict[str, Any]] | None = None,
        seed: int = 0,
    ) -> None:
        """`loader[task]` holds batch_size, eval_batch_size and num_workers for that task."""
        super().__init__()
        self.tasks, self.processor, self.head_args = tasks, processor, head_args
        self.loader = {n: {"batch_size": 32, "num_workers": 0, **(loader or {}).get(n, {})} for n in tasks}
        self.seed = seed

    @property
    def task_names(self) -> list[str]:
        return list(self.tasks)

    def _loader(self, name: str, stage: str, train: bool) -> DataLoader:
        data = self.tasks[name]
        ds = data.dataset(data.samples(stage), self.head_args[name])
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
        opts = self.loader[name]
        workers = int(opts["num_workers"])
        return DataLoader(
            ds,
            batch_size=opts["batch_size"] if train else (opts.get("eval_batch_size") or opts["batch_size"]),
            sampler=sampler,
            collate_fn=data.collate(self.processor, self.head_args[name]),
            num_workers=workers,
            persistent_workers=workers > 0,
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

    def skipped_counts(self) -> dict[str, int]:
        return {f"{n}/{split}": c for n, d in self.tasks.items() for split, c in d.skipped.items()}
