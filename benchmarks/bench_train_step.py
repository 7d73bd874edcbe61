"""What the toolkit's training step costs over a hand-written PyTorch loop: same model, data, optimizer,
schedule, clipping and precision, measured in one process, interleaved.

    .venv/bin/python benchmarks/bench_train_step.py [--steps 400] [--block 10] [--images 2000]
        [--config vqa_demo] [--precision 32-true] [-- overrides...]

The toolkit side is `vltasks fit` as the config runs it (Lightning Trainer with the run's callbacks:
checkpoints, LR monitor, RNG state, the NaN check, logging every ``log_every_n_steps``, the progress
bar, the MultitaskLoader with per-sample seeds). The plain side is a copy of the same model (same
initial weights), the optimizer and LR schedule the module builds, ``clip_grad_norm_`` at the config's
value, and a plain ``DataLoader(shuffle=True)`` over the same dataset and collate: what a person writes
by hand. Blocks of ``--block`` toolkit steps alternate with blocks of plain steps (the plain block runs
inside the toolkit's ``on_train_batch_end`` and its time is taken out), so a change in the machine's
load hits both sides alike. A step's time is from one batch's start to the next (data loading, hooks
and logging included); steps that cross an epoch boundary are left out on both sides (end-of-epoch
work is not a step's). Validation is off (``limit_val_batches=0``). Prints the median over blocks of
(toolkit median / plain median), with the quartiles, and the machine's load average.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def plain_loop(run: Any, model: torch.nn.Module, total: int) -> Any:
    """A hand-written loop over the run's first task: a generator of step times."""
    from gpu_step import plain_parts  # the same loader, optimizer and schedule as the GPU script's

    cfg = run.spec.config
    loader, opt, sched, clip, task = plain_parts(run, model, total)
    params = [p for p in model.parameters() if p.requires_grad]
    precision = str(cfg.trainer.precision)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    model.train()
    while True:
        start = time.perf_counter()
        for batch in loader:
            batch.pop("failed", None)
            with autocast:
                loss = model.heads[task].loss(model(task, batch), batch)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            now = time.perf_counter()
            yield now - start
            start = time.perf_counter()
        yield None  # an epoch boundary: the caller drops this step


def main(argv: list[str] | None = None) -> int:
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from vltasks import api

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="vqa_demo")
    p.add_argument("--steps", type=int, default=400, help="timed steps on each side")
    p.add_argument("--block", type=int, default=10, help="steps per block before switching sides")
    p.add_argument("--images", type=int, default=2000, help="training images of the synthetic world")
    p.add_argument("--precision", default="32-true")
    p.add_argument("--root", default=None, help="where the synthetic world and runs go (default: a temp dir)")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    root = Path(args.root or tempfile.mkdtemp(prefix="bench_train_step_"))
    overrides = [
        f"data.root={root / 'data'}",
        f"trainer.default_root_dir={root / 'runs'}",
        f"synthetic.train={args.images}",
        "synthetic.val=10",
        "synthetic.test=0",
        f"trainer.precision={args.precision}",
        "trainer.limit_val_batches=0",
        "trainer.max_epochs=1000",
        "logging.num_images=0",
        *args.overrides,
    ]
    run = api.build(args.config, overrides, stage="fit")
    blocks = (args.steps + args.block - 1) // args.block
    total_steps = blocks * args.block + 2 * blocks + 10  # warm-up and dropped boundary steps
    plain_model = copy.deepcopy(run.model)
    plain = plain_loop(run, plain_model, total_steps)
    toolkit_blocks: list[list[float]] = [[]]
    plain_blocks: list[list[float]] = []

    class Interleave(Callback):
        """Times toolkit steps (start to next start, the plain block's time taken out) and runs a
        plain block after every ``block`` toolkit steps."""

        def __init__(self) -> None:
            self.last: float | None = None
            self.spent = 0.0
            self.epoch_start = False

        def on_train_epoch_start(self, trainer: L.Trainer, module: Any) -> None:
            self.epoch_start = True

        def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, idx: int) -> None:
            now = time.perf_counter()
            if self.last is not None and not self.epoch_start and trainer.global_step > 2:
                toolkit_blocks[-1].append(now - self.last - self.spent)
            self.last, self.spent, self.epoch_start = now, 0.0, False

        def on_train_batch_end(
            self, trainer: L.Trainer, module: Any, outputs: Any, batch: Any, idx: int
        ) -> None:
            if len(toolkit_blocks[-1]) < args.block:
                return
            start = time.perf_counter()
            times: list[float] = []
            while len(times) < args.block:
                t = next(plain)
                if t is not None:
                    times.append(t)
            plain_blocks.append(times)
            if len(plain_blocks) == blocks:
                trainer.should_stop = True
            else:
                toolkit_blocks.append([])
            self.spent = time.perf_counter() - start

    for _ in range(3):  # the plain side's warm-up (allocator, first batches)
        next(plain)
    kwargs = dict(run.trainer_kwargs)
    kwargs["callbacks"] = [*kwargs["callbacks"], Interleave()]
    trainer = L.Trainer(**kwargs)
    trainer.fit(run.model, run.datamodule)

    ratios = [
        statistics.median(t) / statistics.median(q) for t, q in zip(toolkit_blocks, plain_blocks) if t and q
    ]
    quart = statistics.quantiles(ratios, n=4)
    tool = [x for b in toolkit_blocks for x in b]
    hand = [x for b in plain_blocks for x in b]
    batch = run.datamodule.specs[run.model.task_names[0]].batch_size
    print(f"\nconfig {args.config}, precision {args.precision}, batch {batch}: {len(tool)} toolkit and")
    print(f"{len(hand)} plain steps in {len(ratios)} interleaved blocks of {args.block}")
    ms = 1000 * statistics.median(tool), 1000 * statistics.median(hand)
    print(f"median step: toolkit {ms[0]:.1f} ms, plain {ms[1]:.1f} ms")
    print(f"toolkit / plain, median over blocks: {statistics.median(ratios):.3f}", end=" ")
    print(f"(quartiles {quart[0]:.3f}, {quart[2]:.3f})")
    load = os.getloadavg()[0]
    print(
        f"load average at the end: {load:.2f}, cpus {os.cpu_count()}, torch threads {torch.get_num_threads()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
