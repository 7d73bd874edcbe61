"""``python -m vltasks.datamodules.synthetic vqav2 --root DIR --train N --val M --seed S``."""

from __future__ import annotations

import argparse
import json
import sys

from .vqav2 import write_vqav2


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the requested synthetic dataset, print its summary."""
    parser = argparse.ArgumentParser(prog="python -m vltasks.datamodules.synthetic")
    sub = parser.add_subparsers(dest="format", required=True)
    vqa = sub.add_parser("vqav2", help="VQAv2 questions/annotations JSON + COCO-named JPEGs")
    vqa.add_argument("--root", required=True)
    vqa.add_argument("--train", type=int, default=2000, help="train2014 images")
    vqa.add_argument("--val", type=int, default=500, help="val2014 images")
    vqa.add_argument("--test", type=int, default=0, help="test2015 images (questions only)")
    vqa.add_argument("--test-dev", type=int, default=0, help="test-dev2015 images (subset of test2015)")
    vqa.add_argument("--seed", type=int, default=0)
    vqa.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args(argv)
    tests = {k: n for k, n in (("test2015", args.test), ("test-dev2015", args.test_dev)) if n > 0}
    summary = write_vqav2(
        args.root,
        {"train2014": args.train, "val2014": args.val},
        seed=args.seed,
        image_size=args.image_size,
        test_splits=tests or None,
    )
    summary = {k: v for k, v in summary.items() if k not in ("question_kind", "test_answers")}
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
