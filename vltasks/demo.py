"""What a demo prints after fitting on the synthetic world. VQA: accuracy per question kind against
the majority-answer baseline, measured on the validation split with the official metric. Other
tasks: the trivial baselines the world's writer recorded for the validation split (chance, the most
frequent answer or caption, hypothesis only, a random object), to read beside the metrics."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from vltasks.config import RunSpec
from vltasks.datamodules.synthetic import read_meta
from vltasks.metrics.functional.vqa import vqa_scores


@torch.no_grad()
def _val_predictions(model: Any, dm: Any, task_index: int) -> tuple[list[int], list[str], list[list[str]]]:
    model.eval()
    qids, preds, answers = [], [], []
    name = model.task_names[task_index]
    for batch in dm.val_dataloader()[task_index]:
        batch = dm.screen(name, "val", batch)
        if batch is None:
            continue
        batch = {k: v.to(model.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        out = model(name, batch)
        rows = model.heads[name].predict(out, batch)
        qids += [r["question_id"] for r in rows]
        preds += [r["answer"] for r in rows]
        answers += batch["answers"]
    return qids, preds, answers


def _task_baselines(name: str, meta: dict[str, Any], split: str | None) -> dict[str, Any]:
    """Print the trivial baselines a world's meta records for one split; {} where it records none."""
    baselines = meta.get("baselines", {}).get(split) if split else None
    if not baselines:
        return {}
    print(f"\n{name}: trivial baselines, synthetic {split} split (read beside the metrics)")
    for what, value in baselines.items():
        print(f"  {what:<55} {value:.4f}")
    return {name: {"split": split, "baselines": baselines}}


def print_baselines(spec: RunSpec, stage: str) -> dict[str, Any]:
    """The trivial baselines the world's writer recorded for the split a stage evaluates, printed
    beside an evaluation's metrics (`validate`, `test`); {} where none were recorded."""
    report: dict[str, Any] = {}
    for name, task in spec.tasks.items():
        report.update(_task_baselines(name, read_meta(task.data.root), task.data.split(stage)))
    return report


def synthetic_report(spec: RunSpec, model: Any, dm: Any, best: str) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for i, name in enumerate(model.task_names):
        data = spec.tasks[name].data
        meta = read_meta(data.root)
        # VQAv2's world records none; video QA's do
        report.update(_task_baselines(name, meta, data.split("val")))
        if model.config["tasks"][name]["head"] != "vqa":
            continue
        qids, preds, answers = _val_predictions(model, dm, i)
        majority = model.heads[name].answers[0]  # the vocabulary is sorted by training frequency
        protocol = model.heads[name].protocol  # video QA: "exact", one answer per question
        ours = vqa_scores(preds, answers, protocol).double()
        base = vqa_scores([majority] * len(preds), answers, protocol).double()
        by_kind: dict[str, list[int]] = defaultdict(list)
        for j, q in enumerate(qids):
            by_kind[meta["question_kind"][str(q)]].append(j)
        rows = {"all": (ours.mean().item(), base.mean().item(), len(qids))}
        for kind, idx in sorted(by_kind.items()):
            rows[kind] = (ours[idx].mean().item(), base[idx].mean().item(), len(idx))
        what = "official 2021" if protocol == "vqav2" else repr(protocol)
        print(f"\n{name}: validation VQA accuracy ({what} protocol) vs always answering {majority!r}")
        print(f"  {'question kind':<14} {'model':>7} {'majority':>9} {'questions':>10}")
        for kind, (acc, b, n) in rows.items():
            print(f"  {kind:<14} {acc:>7.4f} {b:>9.4f} {n:>10d}")
        ratio = rows["all"][0] / max(rows["all"][1], 1e-12)
        print(f"  model / majority baseline = {ratio:.2f}x   (checkpoint: {best})")
        report[name] = {
            **report.get(name, {}),
            **{k: {"accuracy": a, "majority": b, "questions": n} for k, (a, b, n) in rows.items()},
        }
        report[name]["majority_answer"] = majority
    return report
