"""`vltasks fit|validate|test|predict --config NAME_OR_PATH [dotted.key=value ...]`, `vltasks configs`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib import resources
from pathlib import Path

from vltasks.config import ConfigError, builtin_configs, load_run

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
        s.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. data.root=/data/vqav2")
    sub.add_parser("configs", help="list the built-in configs")
    return p


def _describe(name: str) -> str:
    text = (resources.files("vltasks.configs") / f"{name}.yaml").read_text()
    first = next((line for line in text.splitlines() if line.startswith("#")), "#")
    return first.lstrip("# ").strip()


def _print_table(title: str, metrics: dict[str, float]) -> None:
    if not metrics:
        return
    width = max(len(k) for k in metrics)
    print(f"\n{title}")
    for k, v in metrics.items():
        print(f"  {k:<{width}}  {v:.4f}")


def run(stage: str, config: str, overrides: list[str], ckpt: str | None) -> int:
    import lightning as L

    from vltasks import runtime

    spec = load_run(config, overrides)
    runtime.prepare_synthetic(spec)
    L.seed_everything(spec.config.seed, workers=True, verbose=False)
    data = runtime.build_task_data(spec)
    needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}[
        stage
    ]
    for d in data.values():
        for s in needed:
            d.samples(s)  # read and validate now: bad input fails before any training
    model = runtime.build_model(spec, data, ckpt if stage != "fit" or ckpt else None)
    dm = runtime.build_datamodule(spec, data, model)
    skipped = dm.skipped_counts()
    info = runtime.RunInfo(
        {k: str(v) for k, v in _flatten(spec.plain()).items()},
        {f"data/{k}/skipped": v for k, v in skipped.items()},
    )
    trainer, run_dir, callbacks = runtime.build_trainer(spec, model, stage, info)
    for k, v in skipped.items():
        if v:
            print(f"data: skipped {v} bad records in {k}")

    result: dict[str, object] = {}
    if stage == "fit":
        trainer.fit(model, dm, ckpt_path=ckpt)
        best = callbacks["best"].best_model_path or callbacks["last"].best_model_path  # type: ignore[attr-defined]
        trainer.validate(model, dm, ckpt_path=best or None, verbose=False)
        result = {**runtime.stage_metrics(trainer, "val"), "best_checkpoint": best}
        _print_table(
            f"validation metrics of the best checkpoint ({best})", runtime.stage_metrics(trainer, "val")
        )
        if spec.synthetic and trainer.global_rank == 0:
            from vltasks.demo import synthetic_report

            result["synthetic"] = synthetic_report(spec, model, dm, best)
    elif stage in ("validate", "test"):
        getattr(trainer, stage)(model, dm, verbose=False)
        prefix = "val" if stage == "validate" else "test"
        result = runtime.stage_metrics(trainer, prefix)
        _print_table(f"{stage} metrics", result)
    else:
        trainer.predict(model, dm, return_predictions=False)
        result = {t: str(p) for t, p in callbacks["predictions"].written.items()}  # type: ignore[attr-defined]
        for t, p in result.items():
            print(f"predictions for {t}: {p}")
    unreadable = dm.failed_counts(trainer)
    for k, v in unreadable.items():
        print(f"data: skipped {v} samples whose media could not be loaded in {k}")
    if unreadable:
        result["skipped_at_load"] = unreadable
    if trainer.global_rank == 0:
        path = runtime.write_metrics(run_dir, stage, result)
        print(f"\nrun directory: {run_dir}\nmetrics: {path}")
        print(f"TensorBoard: tensorboard --logdir {Path(run_dir).parent}")
    return 0


def _flatten(d: object, prefix: str = "") -> dict[str, object]:
    if isinstance(d, dict):
        out: dict[str, object] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = _parser()
    # overrides may come before or after --ckpt: collect the leftovers that look like key=value
    args, extra = parser.parse_known_args(argv)
    bad = [e for e in extra if e.startswith("-") or "=" not in e]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    if args.command == "configs":
        for name in builtin_configs():
            print(f"{name:<16} {_describe(name)}")
        return 0
    from vltasks.datamodules import BadSampleError
    from vltasks.tasks.module import NonFiniteLossError

    try:
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


if __name__ == "__main__":
    sys.exit(main())
