"""`vltasks fit|validate|test|predict --config NAME_OR_PATH [dotted.key=value ...] [--print-config]`,
`vltasks configs [NAME]`, `vltasks export --ckpt CKPT --out DIR`, `vltasks score FORMAT RESULTS ...`."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources

from omegaconf import OmegaConf

from vltasks.config import ConfigError, _find, builtin_configs, load_run
from vltasks.logs import setup_logging

STAGES = ("fit", "validate", "test", "predict")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vltasks", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for stage in STAGES:
        s = sub.add_parser(stage, help=f"{stage} a task (or several) from a config")
        s.add_argument(
            "--config", "-c", required=True, help="built-in config name (see `vltasks configs`) or YAML path"
        )
        s.add_argument("--ckpt", help="checkpoint: resumes fit, or the weights to evaluate / predict with")
        s.add_argument(
            "--print-config",
            "--print_config",
            action="store_true",
            help="print the resolved config (overrides applied, defaults filled in) and exit",
        )
        s.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. data.root=/data/vqav2")
    c = sub.add_parser("configs", help="list the built-in configs, or show one with its comments")
    c.add_argument("name", nargs="?", help="a built-in config name or a YAML path")
    e = sub.add_parser("export", help="write a checkpoint as transformers task model directories")
    e.add_argument("--ckpt", required=True, help="a vltasks checkpoint (best.ckpt)")
    e.add_argument("--out", required=True, help="directory to write (one subdirectory per task when several)")
    e.add_argument("--no-verify", action="store_true", help="skip loading the export back to compare outputs")
    sc = sub.add_parser("score", help="score a submission file against official annotation files")
    sc.add_argument("format", nargs="?", help="submission format (see `vltasks score --list`)")
    sc.add_argument("results", nargs="?", help="the submission file (results JSON, boxes, jsonl)")
    sc.add_argument("--root", help="the dataset folder in its official layout (data.root)")
    sc.add_argument("--split", help="the annotated split the submission answers (e.g. val2014, test)")
    sc.add_argument("--gt", help="the ground-truth file, for formats scored against one file")
    sc.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a scorer option (protocol, metrics, tokenizer, ...) or a reader option (data.options.KEY)",
    )
    sc.add_argument("--out", help="JSON file for the scores (default: <results>.scores.json)")
    sc.add_argument("--list", action="store_true", help="list the submission formats and exit")
    return p


def _describe(name: str) -> str:
    text = (resources.files("vltasks.configs") / f"{name}.yaml").read_text()
    first = next((line for line in text.splitlines() if line.startswith("#")), "#")
    return first.lstrip("# ").strip()


def run(stage: str, config: str, overrides: list[str], ckpt: str | None) -> int:
    """One stage through the Python API (vltasks/api.py): what a user's own Trainer script does."""
    import lightning as L

    from vltasks import api

    run_ = api.build(config, overrides, stage=stage, ckpt=ckpt)
    trainer = L.Trainer(**run_.trainer_kwargs)
    if stage == "fit":
        trainer.fit(run_.model, run_.datamodule, ckpt_path=ckpt)
    elif stage == "predict":
        trainer.predict(run_.model, run_.datamodule, return_predictions=False)
    else:
        getattr(trainer, stage)(run_.model, run_.datamodule, verbose=False)
    run_.finish(trainer)
    return 0


def _show_config(name: str) -> int:
    """One config's YAML as written, comments included (and where its `_base_` comes from)."""
    try:
        path = _find(name)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    text = path.read_text(encoding="utf-8")
    print(f"# {path}")
    print(text, end="" if text.endswith("\n") else "\n")
    base = next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("_base_:")), None
    )
    if base:
        print(f"# inherits {base}: `vltasks configs {base}`")
        print(f"# the merged config: `vltasks fit --config {name} --print-config`")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    setup_logging()
    parser = _parser()
    # overrides may come before or after --ckpt: collect the leftovers that look like key=value
    args, extra = parser.parse_known_args(argv)
    bad = [e for e in extra if e.startswith("-") or "=" not in e]
    if bad or (extra and args.command not in STAGES):
        parser.error(f"unrecognized arguments: {' '.join(bad or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    if args.command == "configs":
        if args.name:
            return _show_config(args.name)
        for name in builtin_configs():
            print(f"{name:<16} {_describe(name)}")
        return 0
    if args.command == "export":
        from vltasks.export import ExportError, export

        try:
            export(args.ckpt, args.out, verify=not args.no_verify)
        except (ExportError, FileNotFoundError) as e:
            print(f"export error: {e}", file=sys.stderr)
            return 1
        return 0
    if args.command == "score":
        from vltasks.score import score_main

        return score_main(parser, args)
    from vltasks.datamodules import BadSampleError
    from vltasks.tasks.module import NonFiniteLossError

    try:
        if args.print_config:
            print(OmegaConf.to_yaml(load_run(args.config, args.overrides).config), end="")
            return 0
        return run(args.command, args.config, args.overrides, args.ckpt)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    except (BadSampleError, FileNotFoundError) as e:
        print(f"data error: {e}", file=sys.stderr)
        return 1
    except NonFiniteLossError as e:
        print(f"training error: {e}", file=sys.stderr)
        return 1
    except KeyError as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2


def entry() -> None:
    """The `vltasks` command and `python -m vltasks.cli`: `main`, then leave the process group."""
    code = main()
    _close_process_group()
    sys.exit(code)


def _close_process_group() -> None:
    """Leave the process group that a launcher (torchrun, srun) made us join before the interpreter
    exits: a rank that exits with it open can abort in gloo's teardown (seen under FSDP on CPU).
    Only at the program's end: a launched script may run several stages in one process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    entry()
