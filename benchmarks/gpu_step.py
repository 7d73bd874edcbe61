"""A base-size backbone on a GPU: ViLT-B/32's shape (random weights) training VQA in bf16-mixed for a
fixed number of steps; prints samples/s, peak memory, model FLOPs utilisation (MFU) and the toolkit's
time per step against a plain PyTorch loop with the same model, data, optimizer and precision.

    .venv/bin/python benchmarks/gpu_step.py                      # GPU: well under 5 minutes
    .venv/bin/python benchmarks/gpu_step.py --device cpu --steps 2 --tiny   # smoke check on a CPU

Four timed phases, each ``--warmup`` untimed steps then ``--steps`` timed ones (the device is
synchronized at the window's two ends only, so the host may run ahead as it does in a real fit):

1. the toolkit: `vltasks fit` as the config runs it (`api.build`, Lightning Trainer with the run's
   callbacks, the MultitaskLoader, the NaN check), validation and the progress bar off;
2. the plain loop: a copy of the same initial model, ``DataLoader(shuffle=True)`` over the same dataset
   and collate with the same workers, AdamW and the LR schedule the module builds, clipping at the
   config's value, ``torch.autocast`` in bf16: what a person writes by hand;
3. the same loop on one batch kept on the device: the model's own ceiling (no data loading);
4. the data loader alone (no model): whether the data can keep up.

MFU = model FLOPs per step (forward and backward, counted by ``torch.utils.flop_counter`` on one
step) x steps per second / the device's peak (bf16 dense from the device's name, or
``--peak-tflops``). The tokenizer is learned from the synthetic questions, so the word-embedding table
is smaller than ViLT's 30522 rows (fewer parameters; the same FLOPs: an embedding is a lookup).
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# ViLT-B/32 (dandelin/vilt-b32-*): BERT-base widths, 32 px patches on 384 px images, 40 text tokens
VILT_B32 = {
    "hidden_size": 768,
    "num_layers": 12,
    "num_heads": 12,
    "intermediate_size": 3072,
    "image_size": 384,
    "patch_size": 32,
    "max_text_len": 40,
    "dropout": 0.1,
}
# dense bf16 peak, TFLOPS, by a substring of torch.cuda.get_device_name()
PEAK_BF16 = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "A10G": 70.0, "L4": 121.0}


def overrides(args: argparse.Namespace, root: Path) -> list[str]:
    shape = {} if args.tiny else VILT_B32
    return [
        f"data.root={root / 'data'}",
        f"trainer.default_root_dir={root / 'runs'}",
        f"synthetic.train={args.images}",
        "synthetic.val=4",
        "synthetic.test=0",
        f"synthetic.image_size={shape.get('image_size', 64)}",
        *[f"backbone.preset_args.{k}={v}" for k, v in shape.items()],
        f"data.batch_size={args.batch_size}",
        f"data.num_workers={args.workers}",
        f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        "trainer.devices=1",
        f"trainer.precision={args.precision}",
        f"trainer.max_steps={args.warmup + args.steps + 1}",
        "trainer.max_epochs=-1",
        "trainer.limit_val_batches=0",
        "trainer.enable_progress_bar=false",
        "logging.num_images=0",
    ]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [to_device(v, device) for v in batch]
    return batch


class Window:
    """Times ``steps`` steps after ``warmup`` ones: start and end marked after a device sync."""

    def __init__(self, warmup: int, steps: int, device: torch.device) -> None:
        self.warmup, self.steps, self.device = warmup, steps, device
        self.start = self.seconds = 0.0
        self.samples = 0
        self.peak: float | None = None

    def before(self, step: int) -> None:
        if step == self.warmup:
            sync(self.device)
            reset_peak(self.device)
            self.start = time.perf_counter()

    def after(self, step: int, samples: int) -> bool:
        """Call after step ``step`` (0-based) with its batch's size; True once the window is done."""
        if step >= self.warmup:
            self.samples += samples
        if step == self.warmup + self.steps - 1:
            sync(self.device)
            self.seconds = time.perf_counter() - self.start
            self.peak = peak_gib(self.device)
            return True
        return False


def toolkit(run: Any, window: Window) -> None:
    """`vltasks fit` with a callback that marks the window (the Trainer stops after it)."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    class Mark(Callback):
        def on_train_batch_start(self, trainer: L.Trainer, module: Any, batch: Any, idx: int) -> None:
            window.before(trainer.global_step)

        def on_train_batch_end(self, trainer: L.Trainer, module: Any, out: Any, batch: Any, idx: int) -> None:
            samples = sum(len(b["sample_id"]) for b in batch.values() if b)
            if window.after(trainer.global_step - 1, samples):
                trainer.should_stop = True

    kwargs = dict(run.trainer_kwargs)
    kwargs["callbacks"] = [*kwargs["callbacks"], Mark()]
    trainer = L.Trainer(**kwargs)
    trainer.fit(run.model, run.datamodule)


def plain_parts(run: Any, model: Any, total: int) -> tuple[Any, Any, Any, float | None, str]:
    """The hand-written loop's loader, optimizer, schedule, clipping and task."""
    from torch.utils.data import DataLoader
    from vltasks.datamodules.media import CollateLoaded

    from vltasks.tasks.optim import build_optimizer

    cfg = run.spec.config
    task = model.task_names[0]
    data, spec = run.datamodule.tasks[task], run.datamodule.specs[task]
    loader = DataLoader(
        data.dataset(data.samples("train"), train=True),
        batch_size=spec.batch_size,
        shuffle=True,
        collate_fn=CollateLoaded(data.collate(model.backbone.processor, model.collate_args()[task])),
        num_workers=spec.num_workers,
        persistent_workers=spec.num_workers > 0,
    )
    parts = [(model.backbone, 1.0), (model.heads, float(cfg.optim.head_lr_mult))]
    opt, sched = build_optimizer(parts, dict(cfg.optim), total)
    return loader, opt, sched, cfg.trainer.gradient_clip_val, task


def batches(loader: Any) -> Iterator[dict[str, Any]]:
    while True:
        for batch in loader:
            batch.pop("failed", None)
            yield batch


def plain(
    run: Any, model: Any, window: Window, device: torch.device, precision: str, fixed: bool = False
) -> float:
    """The plain loop over the loader, or (``fixed``) over one batch on the device; returns the model
    FLOPs of one training step when ``fixed`` (counted on the first step, a warm-up step)."""
    from torch.utils.flop_counter import FlopCounterMode

    total = window.warmup + window.steps
    loader, opt, sched, clip, task = plain_parts(run, model, total)
    params = [p for p in model.parameters() if p.requires_grad]
    bf16 = precision == "bf16-mixed"
    source = batches(loader)
    one = to_device(next(source), device) if fixed else None
    flops = 0.0
    model.train()
    for step in range(total):
        window.before(step)
        batch = one if one is not None else to_device(next(source), device)
        counter = FlopCounterMode(display=False) if fixed and step == 0 else None
        with (
            counter if counter is not None else nullcontext(),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16),
        ):
            loss = model.heads[task].loss(model(task, batch), batch)
            loss.backward()
        if counter is not None:
            flops = float(counter.get_total_flops())
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if window.after(step, len(batch["sample_id"])):
            break
    return flops


def loader_alone(run: Any, model: Any, window: Window) -> None:
    loader, _, _, _, _ = plain_parts(run, model, 1)
    source = batches(loader)
    for step in range(window.warmup + window.steps):
        window.before(step)
        if window.after(step, len(next(source)["sample_id"])):
            break


def main(argv: list[str] | None = None) -> int:
    from vltasks import api

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--steps", type=int, default=100, help="timed steps per phase")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps before them")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--images", type=int, default=1500, help="training images (2-4 questions each)")
    p.add_argument("--workers", type=int, default=None, help="loader workers (default: cpus - 2, cpu: 0)")
    p.add_argument("--precision", default="bf16-mixed", choices=("bf16-mixed", "32-true"))
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for MFU")
    p.add_argument("--tiny", action="store_true", help="the tiny preset at 64 px (a smoke check)")
    p.add_argument("--root", default=None, help="where the world and runs go (default: a temp dir)")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device here: use --device cpu (with --tiny for a smoke check)")
    if args.workers is None:
        args.workers = max(0, (os.cpu_count() or 2) - 2) if args.device == "cuda" else 0
    if args.tiny:
        args.images, args.batch_size, args.warmup = min(args.images, 40), min(args.batch_size, 8), 1
    device = torch.device(args.device)
    root = Path(args.root or tempfile.mkdtemp(prefix="gpu_step_"))
    started = time.perf_counter()

    run = api.build("vqa_demo", overrides(args, root), stage="fit")
    per_epoch = run.datamodule.schedule().steps
    if args.warmup + args.steps > per_epoch:
        p.error(
            f"{args.warmup + args.steps} steps do not fit in one epoch ({per_epoch} batches): raise --images"
        )
    initial = copy.deepcopy(run.model)  # the plain loop's copy, before the toolkit trains

    phases: dict[str, Window] = {}
    phases["toolkit (vltasks fit)"] = Window(args.warmup, args.steps, device)
    toolkit(run, phases["toolkit (vltasks fit)"])
    run.model.cpu()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    model = initial.to(device)
    phases["plain loop, same loader"] = Window(args.warmup, args.steps, device)
    plain(run, model, phases["plain loop, same loader"], device, args.precision)
    phases["plain loop, one batch on device"] = Window(args.warmup, args.steps, device)
    flops = plain(run, model, phases["plain loop, one batch on device"], device, args.precision, fixed=True)
    phases[f"data loader alone ({args.workers} workers)"] = Window(args.warmup, args.steps, device)
    loader_alone(run, model, phases[f"data loader alone ({args.workers} workers)"])

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = args.peak_tflops
    if peak is None and device.type == "cuda" and args.precision == "bf16-mixed":
        peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    params = sum(p.numel() for p in model.parameters())
    shape = "vilt_tiny (64 px)" if args.tiny else "ViLT-B/32 config (384 px, 12 x 768)"
    print(f"\n{name}, {args.precision}, batch {args.batch_size}, {shape}, {params / 1e6:.1f} M parameters")
    print(
        f"{args.steps} timed steps after {args.warmup} per phase; model FLOPs (forward + backward) "
        f"{flops / 1e9:.1f} G per step, {flops / 1e9 / args.batch_size:.2f} G per sample"
    )
    print(f"{'phase':36s} {'samples/s':>10s} {'ms/step':>8s} {'peak GiB':>9s} {'MFU':>6s}")
    for label, w in phases.items():
        ms = 1000 * w.seconds / args.steps
        mem = f"{w.peak:9.2f}" if w.peak is not None else f"{'n/a':>9s}"
        model_phase = not label.startswith("data")
        mfu = (
            f"{100 * flops / (w.seconds / args.steps) / (peak * 1e12):5.1f}%"
            if peak and model_phase
            else "  n/a"
        )
        print(f"{label:36s} {w.samples / w.seconds:10.1f} {ms:8.1f} {mem} {mfu}")
    ratio = phases["toolkit (vltasks fit)"].seconds / phases["plain loop, same loader"].seconds
    print(f"toolkit / plain loop, time for the same steps: {ratio:.3f}")
    print(f"peak: {f'{peak} TFLOPS' if peak else 'unknown (pass --peak-tflops)'}; ", end="")
    print(f"host max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB; ", end="")
    print(f"wall {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
