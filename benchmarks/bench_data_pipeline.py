"""The VQA data pipeline alone, on 384 px JPEGs: what each stage costs against reading the files.

    .venv/bin/python benchmarks/bench_data_pipeline.py [--images 400] [--workers 0 1 2] [--batches 30]
        [--batch-size 32] [--root DIR] [--quick]

The synthetic VQAv2 world is written at 384 x 384 (``synthetic.image_size=384``), and the processor is
ViLT-B/32's (shortest edge 384, sizes a multiple of 32) on the tiny preset (the model is not run).
Rows, each over the same files, after one read of every file (the page cache is warm):

- bare read: ``open(path, "rb").read()`` in a loop, the floor every decoder pays;
- PIL decode: `datamodules.media.open_image` (what the readers call: header check, ``convert("RGB")``);
- torchvision decode: ``decode_jpeg(read_file(path))`` (libjpeg-turbo into a uint8 tensor);
- PIL decode + image processor: the per-sample work of a batch (resize, rescale, normalize);
- the VQA training loader as a fit iterates it (`VLDataModule.train_dataloader`: sampler, per-sample
  seeds, decode, collate with tokenizer and image processor) with 0, 1, 2... workers, after two
  batches of warm-up (worker start-up is not counted).

Each row prints images (or questions) per second and its cost per image as a multiple of the bare
read. A VQA sample is a question; an image has 2-4 of them and is decoded once per question.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vltasks.datamodules.media import open_image  # noqa: E402

from vltasks import runtime  # noqa: E402
from vltasks.config import load_run  # noqa: E402

SIZE = 384


def overrides(root: Path, images: int, batch_size: int, workers: int) -> list[str]:
    """vqa_demo on 384 px images with ViLT-B/32's image processing."""
    return [
        f"data.root={root}",
        f"synthetic.train={images}",
        "synthetic.val=4",
        "synthetic.test=0",
        f"synthetic.image_size={SIZE}",
        f"backbone.preset_args.image_size={SIZE}",
        "backbone.preset_args.patch_size=32",
        f"data.batch_size={batch_size}",
        f"data.num_workers={workers}",
    ]


def rate(fn: Callable[[Any], Any], items: list[Any], repeat: int) -> float:
    """Items per second of ``fn`` over ``items``, best of ``repeat`` passes."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def loader_rate(spec: Any, data: Any, model: Any, batches: int) -> float:
    """Questions per second of the training loader, after two batches of warm-up."""
    dm = runtime.build_datamodule(spec, data, model)
    batches = min(batches, dm.schedule().steps - 2)  # within one epoch (the next restarts the sampler)
    it = iter(dm.train_dataloader())
    for _ in range(2):
        next(it)
    n, start = 0, time.perf_counter()
    for _ in range(batches):
        batch, _, _ = next(it)
        n += len(batch["vqa"]["sample_id"])
    elapsed = time.perf_counter() - start
    del it  # stops the workers
    return n / elapsed


def main(argv: list[str] | None = None) -> int:
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=400, help="training images of the synthetic world")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batches", type=int, default=30, help="timed batches per worker count")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeat", type=int, default=3, help="best of this many passes (decode rows)")
    p.add_argument("--root", default=None, help="where the world is written (default: a temp dir)")
    p.add_argument("--quick", action="store_true", help="120 images, 6 batches, one pass, workers 0 1")
    args = p.parse_args(argv)
    if args.quick:
        args.images, args.batches, args.repeat, args.workers = 120, 6, 1, [0, 1]
    root = Path(args.root or tempfile.mkdtemp(prefix="bench_data_pipeline_"))
    spec = load_run("vqa_demo", overrides(root, args.images, args.batch_size, 0))
    runtime.prepare_synthetic(spec)
    data = runtime.build_task_data(spec)
    model = runtime.build_model(spec, data, None)
    paths = sorted({s["image_path"] for s in data["vqa"].samples("train")})
    processor = model.backbone.processor

    def read(path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def processed(path: str) -> Any:
        return processor.images([open_image(path, "bench")])

    for path in paths:  # the page cache, warm for every row
        read(path)
    pixels = processor.images([open_image(paths[0], "bench")])["pixel_values"].shape
    megabytes = sum(os.path.getsize(x) for x in paths) / len(paths) / 1e6
    print(f"{len(paths)} JPEGs of {SIZE}x{SIZE} ({megabytes:.3f} MB each), processor output {list(pixels)}")
    print(f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    bare = rate(read, paths, args.repeat)
    rows: list[tuple[str, float, str]] = [
        ("bare read", bare, "images"),
        ("PIL decode (open_image)", rate(lambda x: open_image(x, "bench"), paths, args.repeat), "images"),
        (
            "torchvision decode_jpeg",
            rate(lambda x: decode_jpeg(read_file(x), mode=ImageReadMode.RGB), paths, args.repeat),
            "images",
        ),
        ("PIL decode + image processor", rate(processed, paths, args.repeat), "images"),
    ]
    for workers in args.workers:
        spec_w = load_run("vqa_demo", overrides(root, args.images, args.batch_size, workers))
        name = f"VQA train loader, {workers} worker{'s' if workers != 1 else ''}"
        rows.append((name, loader_rate(spec_w, data, model, args.batches), "questions"))
    print(f"\n{'path':36s} {'per second':>12s}  {'cost per image / bare read':>26s}")
    for name, per_s, unit in rows:
        print(f"{name:36s} {per_s:8.0f} {unit:9s} {bare / per_s:10.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
