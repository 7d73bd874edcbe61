"""One LightningDataModule for one or many tasks: exact (unpadded) evaluation under DDP, per-step task
sampling that every rank agrees on, and training data whose position and randomness a checkpoint restores.

Training (docs/design-notes.md, 43-45): each task's samples are shuffled per *pass* (seed +
pass, as `DistributedSampler`), rank r of W takes every W-th one, so with a per-process batch of B / W
the W ranks' step k together hold the samples of the 1-process step k with batch B. A `TaskSchedule`
says which tasks train in each step (all, round robin, or drawn by dataset size or a temperature), as a
function of the seed, the epoch and the step only: every rank draws the same. Each task's loader cycles
through its passes on its own, so an epoch is a step count, and the position of every task at any
(epoch, step) follows from the schedule; `MultitaskLoader.state_dict` therefore holds only the epoch
and the steps trained, and a resumed run starts each task's sampler where it stood, without reading a
sample twice. Each sample's RNGs (python, numpy, torch) are seeded from (seed, pass, index) while it
loads, so frame sampling and augmentation do not depend on the worker, the worker count or a restart.
"""

from __future__ import annotations

import logging
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset, Sampler, SequentialSampler
from vltasks.datamodules.base import BadSampleError, TaskData
from vltasks.datamodules.media import CollateLoaded

from vltasks.batch import FAILED

if TYPE_CHECKING:
    from vltasks.config import DataSpec

log = logging.getLogger(__name__)

SAMPLINGS = ("all", "round_robin", "proportional", "temperature")


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


class TrainSampler(Sampler[tuple[int, int]]):
    """One rank's shard of one pass over a task's training samples, from any position in it.

    The pass's order is ``randperm(n)`` seeded with ``seed + pass`` (DistributedSampler's rule, for any
    world size), padded by wrapping to a multiple of W; rank r takes every W-th index from r. It yields
    ``(pass, index)`` so that `SeededSamples` can seed the sample's randomness from both."""

    def __init__(self, n: int, num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        if n < 1:
            raise ValueError("a training split needs at least one sample")
        self.n, self.num_replicas, self.rank, self.seed = n, num_replicas, rank, seed
        self.pass_, self.start = 0, 0

    @property
    def shard_len(self) -> int:
        return math.ceil(self.n / self.num_replicas)

    def set_position(self, pass_: int, start: int) -> None:
        """The next iteration is pass ``pass_`` from its ``start``-th sample of this rank's shard."""
        self.pass_, self.start = int(pass_), int(start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed + self.pass_)
        order = torch.randperm(self.n, generator=g).tolist()
        total = self.shard_len * self.num_replicas
        order = (order * math.ceil(total / self.n))[:total]  # pad by wrapping, as DistributedSampler
        shard = order[self.rank : total : self.num_replicas]
        return ((self.pass_, i) for i in shard[self.start :])

    def __len__(self) -> int:
        return self.shard_len - self.start


def sample_seed(seed: int, pass_: int, index: int) -> int:
    """A 32-bit seed per (run seed, pass, sample), the same in every process."""
    return int(np.random.SeedSequence([seed, pass_, index]).generate_state(1)[0])


class SeededSamples(Dataset):
    """A training dataset whose sample ``i`` of pass ``p`` loads with python's, numpy's and torch's RNGs
    seeded from (seed, p, i), so its random choices (a clip's frames) are the same in any worker, with
    any number of workers, and after a restart. In the main process (no workers) the RNG states are
    put back afterwards: the model's own randomness (dropout) must not depend on the data.

    ``seeded=False`` (a dataset whose loading draws no randomness, ``draws_random``): the indices
    are passed through, and nothing is seeded or saved."""

    def __init__(self, dataset: Dataset, seed: int, seeded: bool = True) -> None:
        self.dataset, self.seed, self.seeded = dataset, seed, seeded

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[Any]:
        """A batch at once (the DataLoader's fetcher calls this when it exists), each sample seeded
        from (seed, pass, index). In the main process the RNG states are saved and put back once a
        batch, not once a sample: that costs ~100 us, 6% of a tiny model's training step."""
        if not self.seeded:
            return [self.dataset[index] for _, index in keys]
        if torch.utils.data.get_worker_info() is not None:  # a worker's RNGs serve its samples only
            return self._load(keys)
        saved = torch.get_rng_state(), np.random.get_state(), random.getstate()
        try:
            return self._load(keys)
        finally:
            torch.set_rng_state(saved[0])
            np.random.set_state(saved[1])
            random.setstate(saved[2])

    def _load(self, keys: list[tuple[int, int]]) -> list[Any]:
        out = []
        for pass_, index in keys:
            _seed_all(sample_seed(self.seed, pass_, index))
            out.append(self.dataset[index])
        return out


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.random.default_generator.manual_seed(seed)  # CPU only: CUDA generators are left alone


def weights_problem(weights: dict[str, float], tasks: list[str]) -> str | None:
    """What is wrong with ``multitask.weights`` for a run of ``tasks`` (None: nothing)."""
    unknown = sorted(set(weights) - set(tasks))
    if unknown:
        return f"multitask.weights: {unknown} are not tasks of this run ({sorted(tasks)})"
    if any(not float(w) > 0 for w in weights.values()):
        return f"multitask.weights: each must be > 0, got {weights}"
    return None


class TaskSchedule:
    """Which tasks train in each step of each epoch: a function of the seed, the epoch and the step.

    ``all``: every task in every step (the longest task sets the epoch; shorter ones cycle).
    ``round_robin``: one task per step, in turn. ``proportional``: one task per step, drawn with
    probability proportional to its training set size; ``temperature``: to size ** (1 / T) (T = 1 is
    proportional, large T uniform). Draws come from a generator seeded by the seed and the epoch, never
    from the rank, so under DDP every process trains the same task in a step (the same graph)."""

    def __init__(
        self,
        sizes: dict[str, int],
        batches: dict[str, int],
        sampling: str = "all",
        temperature: float = 2.0,
        steps_per_epoch: int | None = None,
        seed: int = 0,
        weights: dict[str, float] | None = None,
    ) -> None:
        """``sizes``: training samples per task (the whole split); ``batches``: batches in one pass of
        a task's loader on one rank (the same on every rank); ``weights``: factors on the drawn
        tasks' probabilities (1 for a task not named), to favour a task that learns slower; ``all``
        and ``round_robin`` draw nothing, and the config check says so when weights are set."""
        if sampling not in SAMPLINGS:
            raise ValueError(f"multitask.sampling must be one of {SAMPLINGS}, got {sampling!r}")
        weights = dict(weights or {})
        problem = weights_problem(weights, list(sizes))
        if problem:
            raise ValueError(problem)
        self.tasks = list(sizes)
        self.sizes, self.batches, self.sampling, self.seed = sizes, batches, sampling, seed
        drawn = [float(sizes[t]) for t in self.tasks]
        if sampling == "temperature":
            drawn = [w ** (1.0 / temperature) for w in drawn]
        if sampling == "round_robin":
            drawn = [1.0] * len(self.tasks)
        drawn = [w * weights.get(t, 1.0) for w, t in zip(drawn, self.tasks)]
        self.probabilities = {t: w / sum(drawn) for t, w in zip(self.tasks, drawn)}
        default = max(batches.values()) if sampling == "all" else sum(batches[t] for t in self.tasks)
        self.steps = int(steps_per_epoch or default)
        self._counts: list[dict[str, int]] = []  # batches of each task drawn in epoch e

    def epoch(self, e: int) -> list[tuple[str, ...]]:
        """The tasks of each step of epoch ``e``."""
        if self.sampling == "all" or len(self.tasks) == 1:
            return [tuple(self.tasks)] * self.steps
        if self.sampling == "round_robin":
            k = len(self.tasks)
            return [(self.tasks[(e * self.steps + s) % k],) for s in range(self.steps)]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + e)
        probs = torch.tensor([self.probabilities[t] for t in self.tasks], dtype=torch.float64)
        draws = torch.multinomial(probs, self.steps, replacement=True, generator=g).tolist()
        return [(self.tasks[i],) for i in draws]

    def position(self, e: int, step: int) -> dict[str, int]:
        """Batches each task has given before step ``step`` of epoch ``e`` (its loader's position)."""
        while len(self._counts) < e:
            counts = dict.fromkeys(self.tasks, 0)
            for chosen in self.epoch(len(self._counts)):
                for t in chosen:
                    counts[t] += 1
            self._counts.append(counts)
        pos = {t: sum(c[t] for c in self._counts[:e]) for t in self.tasks}
        for chosen in self.epoch(e)[:step]:
            for t in chosen:
                pos[t] += 1
        return pos


class MultitaskLoader:
    """The training iterable: per step, a batch of each task the schedule picks (``{task: batch}``).

    Each task's loader cycles on its own (a finished pass starts the next, reshuffled), so where every
    task stands at (epoch, step) follows from the schedule. An iteration starts at step 0 of the
    Trainer's current epoch, or, the first time after a resume, where the checkpoint left off
    (``resume()``: epoch, step, whether that epoch was done); the DataModule keeps that position in
    checkpoints. ``state_dict`` exists so that Lightning counts the loader as resumable."""

    def __init__(
        self,
        loaders: dict[str, DataLoader],
        schedule: TaskSchedule,
        epoch: Callable[[], int],
        resume: Callable[[], tuple[int, int, bool] | None],
    ) -> None:
        self.loaders, self.schedule = loaders, schedule
        self._epoch, self._resume = epoch, resume

    def __len__(self) -> int:
        return self.schedule.steps

    def state_dict(self) -> dict[str, Any]:
        return {}  # the position is in the DataModule's state (restored before any loader exists)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._steps()

    def _steps(self) -> Iterator[dict[str, Any]]:
        # decided at the first batch, not at iter(): Lightning may iter() a loader only to check it
        resume = self._resume()
        epoch, start = self._epoch(), 0
        if resume is not None:
            epoch, start, done = resume
            epoch, start = (epoch + 1, 0) if done else (epoch, start)
        given = self.schedule.position(epoch, start)
        iterators: dict[str, Iterator[Any]] = {}
        for chosen in self.schedule.epoch(epoch)[start:]:
            batch = {}
            for task in chosen:
                if task not in iterators or given[task] % self.schedule.batches[task] == 0:
                    iterators[task] = self._open(task, given[task])
                batch[task] = next(iterators[task])
                given[task] += 1
            yield batch

    def _open(self, task: str, given: int) -> Iterator[Any]:
        loader = self.loaders[task]
        per_pass = self.schedule.batches[task]
        sampler: TrainSampler = loader.sampler  # type: ignore[assignment]
        sampler.set_position(given // per_pass, (given % per_pass) * int(loader.batch_size or 1))
        return iter(loader)


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class VLDataModule(L.LightningDataModule):
    """Train: a `MultitaskLoader` over one loader per task (``sampling`` picks the tasks of each step).
    Eval: one loader per task, sharded without repeats.

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
        sampling: dict[str, Any] | None = None,
    ) -> None:
        """``specs[task]``: the task's resolved data settings (batch sizes, workers, bad-sample policy);
        ``collate_args[task]``: what its head asks of the collate (``Head.collate_args``);
        ``prepare``: what `prepare_data` runs (writing the synthetic world; idempotent);
        ``sampling``: `TaskSchedule` arguments (``sampling``, ``temperature``, ``steps_per_epoch``)."""
        super().__init__()
        self.tasks, self.processor, self.collate_args = tasks, processor, collate_args
        self.specs = specs
        self.seed = seed
        self.prepare = prepare
        self.sampling = dict(sampling or {})
        self._resume: tuple[int, int, bool] | None = None  # set from a checkpoint (load_state_dict)
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
        ds: Dataset = data.dataset(data.samples(stage), train=train)
        world, rank = _world()
        sampler: Sampler[Any]
        if train:
            sampler = TrainSampler(len(ds), world, rank, seed=self.seed)  # type: ignore[arg-type]
            ds = SeededSamples(ds, self.seed, seeded=getattr(ds, "draws_random", True))
        else:
            sampler = (
                UnrepeatedDistributedSampler(len(ds), world, rank) if world > 1 else SequentialSampler(ds)  # type: ignore[arg-type]
            )
        return DataLoader(
            ds,
            batch_size=spec.batch_size if train else spec.eval_batch_size,
            sampler=sampler,
            collate_fn=CollateLoaded(data.collate(self.processor, self.collate_args[name])),
            num_workers=spec.num_workers,
            persistent_workers=spec.num_workers > 0,
            drop_last=False,
            # workers' base seeds from here, not from the global RNG (which a resumed run restores)
            generator=torch.Generator().manual_seed(self.seed),
        )

    def schedule(self) -> TaskSchedule:
        """The tasks of every step, from the split sizes alone (no loader is built or started)."""
        world, _ = _world()
        sizes = {n: len(d.samples("train")) for n, d in self.tasks.items()}
        batches = {n: math.ceil(math.ceil(sizes[n] / world) / self.specs[n].batch_size) for n in sizes}
        return TaskSchedule(sizes, batches, seed=self.seed, **self.sampling)

    def train_dataloader(self) -> CombinedLoader:
        """The `MultitaskLoader` (iterated as Lightning iterates it: ``(batch, index, 0)``)."""
        loaders = {n: self._loader(n, "train", True) for n in self.tasks}
        tasks = MultitaskLoader(loaders, self.schedule(), self._current_epoch, self._take_resume)
        return CombinedLoader(tasks, mode="max_size_cycle")

    def _current_epoch(self) -> int:
        return int(self.trainer.current_epoch) if self.trainer is not None else 0

    def _take_resume(self) -> tuple[int, int, bool] | None:
        resume, self._resume = self._resume, None
        return resume

    def state_dict(self) -> dict[str, Any]:
        """Where training stands, for a checkpoint: the epoch, the batches trained in it (Lightning's
        progress: a checkpoint written at a batch's end counts it, where the loader has already
        fetched the next one), and whether the epoch's training is over."""
        if self.trainer is None or self.trainer.state.fn != TrainerFn.FITTING:
            return {}
        trained = int(self.trainer.fit_loop.epoch_loop.batch_progress.current.processed)
        return {
            "epoch": int(self.trainer.current_epoch),
            "step": trained,
            "done": trained >= self.trainer.num_training_batches,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Lightning restores the DataModule before it builds any loader: the first training batch
        after this comes from the step after the checkpoint's."""
        if state:
            self._resume = (int(state["epoch"]), int(state["step"]), bool(state["done"]))

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
