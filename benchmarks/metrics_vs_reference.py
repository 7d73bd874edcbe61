"""One table: vltasks metrics against their reference implementations (time and largest difference).

    python benchmarks/metrics_vs_reference.py --official-vqa-eval /tmp/VQA/.../vqaEval.py

Captioning rows come from benchmarks/bench_caption.py (`run(n=...)`); VQA rows from bench_vqa.py.
Reference code (the official vqaEval.py) is read from the path given, never from this repository.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_vqa  # noqa: E402


def caption_rows(n: int | None) -> list[dict]:
    """bench_caption.run's rows, or none (with a message) when that benchmark is not available."""
    try:
        from benchmarks import bench_caption
    except ImportError as e:
        print(f"[skipped] captioning benchmark unavailable: {e}", file=sys.stderr)
        return []
    kwargs = {}
    if n is not None:
        params = inspect.signature(bench_caption.run).parameters
        key = next((k for k in ("n", "n_images", "n_caption") if k in params), None)
        if key is None:
            print("[note] bench_caption.run takes no size argument; --n-caption ignored", file=sys.stderr)
        else:
            kwargs[key] = n
    try:
        return list(bench_caption.run(**kwargs))
    except ImportError as e:  # pycocoevalcap (the reference) missing
        print(f"[skipped] captioning reference unavailable: {e}", file=sys.stderr)
        return []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-vqa-eval", default=None, help="path to the official vqaEval.py")
    parser.add_argument("--n-vqa", type=int, default=214354, help="questions (VQAv2 val has 214,354)")
    parser.add_argument("--n-caption", type=int, default=None, help="images for the captioning rows")
    args = parser.parse_args(argv)
    rows = caption_rows(args.n_caption) + bench_vqa.run(args.official_vqa_eval, n=args.n_vqa)
    print(bench_vqa.format_rows(rows))


if __name__ == "__main__":
    main()
