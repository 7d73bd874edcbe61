"""Write a synthetic world in one dataset's official layout, without training anything.

    python -m vltasks.datamodules.synthetic FORMAT --root DIR [--split NAME=N ...]
                                                   [--test-split NAME=N ...] [--seed S]

FORMAT is any registered writer (vqav2, refcoco, snli_ve, vcr, visual7w, karpathy, karpathy_caption).
Without ``--split`` the writer's defaults are used. vqav2 also keeps its short flags (``--train``,
``--val``, ``--test``, ``--test-dev``). The summary (counts and baselines) is printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .writers import WRITERS

HIDDEN = ("question_kind", "test_answers", "template")  # per-record maps: in synthetic_meta.json only


def _sizes(items: list[str], flag: str, parser: argparse.ArgumentParser) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, _, n = item.partition("=")
        if not name or not n.isdigit():
            parser.error(f"{flag} takes NAME=COUNT (e.g. {flag} train=2000), got {item!r}")
        out[name] = int(n)
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, write the requested synthetic dataset, print its summary."""
    parser = argparse.ArgumentParser(prog="python -m vltasks.datamodules.synthetic")
    sub = parser.add_subparsers(dest="format", required=True)
    for name in WRITERS.names():
        p = sub.add_parser(name, help=f"the {name} layout")
        p.add_argument("--root", required=True)
        p.add_argument("--split", action="append", default=[], metavar="NAME=N", help="labelled split")
        p.add_argument("--test-split", action="append", default=[], metavar="NAME=N")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--image-size", type=int, default=64)
        if name == "vqav2":
            p.add_argument("--train", type=int, help="train2014 images")
            p.add_argument("--val", type=int, help="val2014 images")
            p.add_argument("--test", type=int, default=0, help="test2015 images (questions only)")
            p.add_argument("--test-dev", type=int, default=0, help="test-dev2015 images (within test2015)")
    args = parser.parse_args(argv)
    splits = _sizes(args.split, "--split", parser)
    tests = _sizes(args.test_split, "--test-split", parser)
    if args.format == "vqav2":
        splits.update({k: n for k, n in (("train2014", args.train), ("val2014", args.val)) if n is not None})
        tests.update({k: n for k, n in (("test2015", args.test), ("test-dev2015", args.test_dev)) if n > 0})
    summary: dict[str, Any] = WRITERS.get(args.format)(
        args.root, splits or None, seed=args.seed, image_size=args.image_size, test_splits=tests or None
    )
    print(json.dumps({k: v for k, v in summary.items() if k not in HIDDEN}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
