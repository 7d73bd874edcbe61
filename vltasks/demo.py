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


def synthetic_report(spec: RunSpec, model: Any, dm: Any, best: str) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for i, name in enumerate(model.task_names):
        data = spec.tasks[name].data
        meta = read_meta(data.root)
        if model.config["tasks"][name]["head"] != "vqa":
            split = data.split("val")
            baselines = meta.get("baselines", {}).get(split)
            if baselines:
                print(f"\n{name}: trivial baselines, synthetic {split} split (read beside the metrics)")
                for what, value in baselines.items():
                    print(f"  {what:<55} {value:.4f}")
                report[name] = {"split": split, "baselines": baselines}
            continue
        qids, preds, answers = _val_predictions(model, dm, i)
        majority = model.heads[name].answers[0]  # the vocabulary is sorted by training frequency
        ours = vqa_scores(preds, answers).double()
        base = vqa_scores([majority] * len(preds), answers).double()
        by_kind: dict[str, list[int]] = defaultdict(list)
        for j, q in enumerate(qids):
            by_kind[meta["question_kind"][str(q)]].append(j)
        rows = {"all": (ours.mean().item(), base.mean().item(), len(qids))}
        for kind, idx in sorted(by_kind.items()):
            rows[kind] = (ours[idx].mean().item(), base[idx].mean().item(), len(idx))
        print(f"\n{name}: validation VQA accuracy (official 2021 protocol) vs always answering {majority!r}")
        print(f"  {'question kind':<14} {'model':>7} {'majority':>9} {'questions':>10}")
        for kind, (acc, b, n) in rows.items():
            print(f"  {kind:<14} {acc:>7.4f} {b:>9.4f} {n:>10d}")
        ratio = rows["all"][0] / max(rows["all"][1], 1e-12)
        print(f"  model / majority baseline = {ratio:.2f}x   (checkpoint: {best})")
        report[name] = {k: {"accuracy": a, "majority": b, "questions": n} for k, (a, b, n) in rows.items()}
        report[name]["majority_answer"] = majority
    return report
