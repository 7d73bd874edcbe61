"""What DDP's search for unused parameters costs per training step, and what freezing the parts no
head reads saves (issue 12, "unused parameters by design").

    .venv/bin/python benchmarks/bench_ddp_unused.py [--config refcoco_demo] [--blocks 10] [--block 10]
        [--quick]

One process, a gloo group of one (the search is a walk of the autograd graph from the forward's outputs
after every forward, on each process alike, so one process shows its cost; the all-reduce is not
what is compared). The config's model (default: token grounding on the tiny ViLT, whose pooler no
head reads) in three forms, the same initial weights, one training batch, AdamW:

- by design: the unread parts frozen (``backbone.freeze_unused=true``, the default), plain DDP;
- by search: the unread parts left trainable (``backbone.freeze_unused=false``), DDP with
  ``find_unused_parameters=True`` (what it needs then, and what every multi-process run got before
  parts were frozen by design);
- search only: the frozen model with ``find_unused_parameters=True`` (the walk alone).

Blocks of ``--block`` steps of each form alternate, so a change in the machine's load hits all alike;
printed: each form's median step, and the median over blocks of (form / by design).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vltasks import runtime  # noqa: E402
from vltasks.config import load_run  # noqa: E402


def build(config: str, root: Path, freeze_unused: bool) -> tuple[Any, dict[str, Any]]:
    """The config's model on a small synthetic world, and one training batch ``{task: batch}``."""
    spec = load_run(
        config,
        [
            f"data.root={root}",
            "synthetic.train=40",
            "synthetic.val=4",
            "synthetic.test=0",
            "data.num_workers=0",
            f"backbone.freeze_unused={str(freeze_unused).lower()}",
        ],
    )
    runtime.prepare_synthetic(spec)
    data = runtime.build_task_data(spec)
    model = runtime.build_model(spec, data, None)
    batch, _, _ = next(iter(runtime.build_datamodule(spec, data, model).train_dataloader()))
    return model, batch


class Form:
    """One way of running the model under DDP: its wrapper, optimizer and step times."""

    def __init__(self, model: Any, find_unused: bool) -> None:
        self.model = model
        self.ddp = DDP(model, find_unused_parameters=find_unused)
        self.opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        self.blocks: list[list[float]] = []

    def steps(self, batch: dict[str, Any], n: int) -> None:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            loss = sum(self.model.heads[t].loss(self.ddp(t, b), b) for t, b in batch.items())
            loss.backward()
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - start)
        self.blocks.append(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="refcoco_demo")
    p.add_argument("--blocks", type=int, default=10)
    p.add_argument("--block", type=int, default=10, help="steps per block")
    p.add_argument("--root", default=None, help="where the synthetic world goes (default: a temp dir)")
    p.add_argument("--quick", action="store_true", help="3 blocks of 5 steps")
    args = p.parse_args(argv)
    if args.quick:
        args.blocks, args.block = 3, 5
    root = Path(args.root or tempfile.mkdtemp(prefix="bench_ddp_unused_"))
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        frozen, batch = build(args.config, root, freeze_unused=True)
        trainable, _ = build(args.config, root, freeze_unused=False)
        trainable.load_state_dict(frozen.state_dict())
        search_only, _ = build(args.config, root, freeze_unused=True)
        search_only.load_state_dict(frozen.state_dict())
        forms = {
            "by design (frozen, plain DDP)": Form(frozen, find_unused=False),
            "by search (trainable, find_unused)": Form(trainable, find_unused=True),
            "search only (frozen, find_unused)": Form(search_only, find_unused=True),
        }
        for form in forms.values():  # warm-up, not kept (search only warns that it found nothing: so it is)
            form.steps(batch, 3)
            form.blocks.clear()
        for _ in range(args.blocks):
            for form in forms.values():
                form.steps(batch, args.block)
    finally:
        dist.destroy_process_group()
    base = forms["by design (frozen, plain DDP)"]
    print(f"\n{args.config}: frozen by design: {', '.join(frozen.unused_parts) or 'nothing'}")
    threads = torch.get_num_threads()
    print(f"{args.blocks} blocks of {args.block} steps each, interleaved; torch threads {threads}")
    print(f"{'form':38s} {'median ms':>9s}  {'/ by design (median over blocks, quartiles)':>44s}")
    for name, form in forms.items():
        ms = 1000 * statistics.median(t for b in form.blocks for t in b)
        ratios = [statistics.median(a) / statistics.median(b) for a, b in zip(form.blocks, base.blocks)]
        quart = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        print(f"{name:38s} {ms:9.1f}  {statistics.median(ratios):8.3f} ({quart[0]:.3f}, {quart[2]:.3f})")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
