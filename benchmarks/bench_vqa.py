"""Time vltasks' VQA accuracy against the official VQAv2 evaluation (vqaEval.py) on VQAv2-shaped data.

    python benchmarks/bench_vqa.py --official-vqa-eval /tmp/VQA/PythonEvaluationTools/vqaEvaluation/vqaEval.py

The official file (GT-Vision-Lab/VQA, Python-2 era) is not part of this repository: pass its path. It
is imported with its `print "..."` statements rewritten in memory; nothing is written to disk. It is
fed through a small shim with the attributes it reads (`qa`, `getQuesIds`).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import random
import re
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vltasks.metrics import VQAAccuracy  # noqa: E402
from vltasks.metrics.functional.vqa import clear_caches, vqa_scores  # noqa: E402

_NOUNS = "car dog cat man woman tree frisbee pizza hot-dog t-shirt table bus kite sign grass tennis".split()
_ADJ = "red blue green white black big small wooden left right old young".split()
_OTHER = [f"{a} {n}" for a in _ADJ for n in _NOUNS] + _NOUNS + ["don't know", "dont know", "a/b", "b&w"]
_NUMBER_WORDS = "zero one two three four five six seven eight nine ten".split()


def _variant(rng: random.Random, s: str) -> str:
    """Spelling variants annotators and models produce: case, articles, punctuation, spaces."""
    r = rng.random()
    if r < 0.2:
        return s.capitalize()
    if r < 0.35:
        return rng.choice(["the ", "a ", "an "]) + s
    if r < 0.5:
        return s + rng.choice([".", "!", "?", " .", "..."])
    if r < 0.6:
        return f"({s})" if rng.random() < 0.5 else f" {s}\n"
    if r < 0.7:
        return s.replace(" ", ", ") if " " in s else s + "'s"
    return s


def _base_answer(rng: random.Random, answer_type: str) -> str:
    if answer_type == "yes/no":
        return rng.choice(["yes", "no"])
    if answer_type == "number":
        k = min(int(rng.expovariate(0.4)), 10)
        r = rng.random()
        return _NUMBER_WORDS[k] if r < 0.15 else ("1,000" if r < 0.17 else ("none" if r < 0.19 else str(k)))
    return rng.choice(_OTHER)


def make_vqa_data(n: int, seed: int = 0) -> tuple[list[str], list[list[str]], list[str]]:
    """Predictions, 10 GT answers per question and answer types, shaped like VQAv2 val."""
    rng = random.Random(seed)
    preds, answers, kinds = [], [], []
    for _ in range(n):
        kind = rng.choices(["yes/no", "number", "other"], weights=[0.38, 0.12, 0.5])[0]
        main = _base_answer(rng, kind)
        if rng.random() < 0.35:  # unanimous annotators
            gts = [main] * 10
        else:
            gts = [
                main if r < 0.55 else (_variant(rng, main) if r < 0.8 else _base_answer(rng, kind))
                for r in (rng.random() for _ in range(10))
            ]
        r = rng.random()
        pred = rng.choice(gts) if r < 0.5 else (_variant(rng, main) if r < 0.75 else _base_answer(rng, kind))
        preds.append(pred)
        answers.append(gts)
        kinds.append(kind)
    return preds, answers, kinds


def load_official(path: str) -> type:
    """The official VQAEval class, its Python-2 print statements rewritten in memory."""
    source = Path(path).read_text(encoding="utf-8")
    source = re.sub(r'print\s+"([^"]*)"', r'print("\1")', source)
    module = types.ModuleType("official_vqa_eval")
    exec(compile(source, path, "exec"), module.__dict__)
    return module.VQAEval


class _Shim:
    """What VQAEval reads from the official VQA api object: `qa` and `getQuesIds()`."""

    def __init__(self, qa: dict) -> None:
        self.qa = qa

    def getQuesIds(self) -> list[int]:  # noqa: N802 - the official name
        return list(self.qa)


def official_scores(vqa_eval_cls: type, preds, answers, kinds) -> tuple[torch.Tensor, float]:
    gts = {}
    for q, (g, k) in enumerate(zip(answers, kinds)):
        dicts = [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(g)]
        gts[q] = {"answers": dicts, "question_type": "what", "answer_type": k}
    res = {q: {"question_id": q, "answer": p} for q, p in enumerate(preds)}
    evaluator = vqa_eval_cls(_Shim(copy.deepcopy(gts)), _Shim(res), n=20)  # n=20: effectively unrounded
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
    elapsed = time.perf_counter() - start
    percent = torch.tensor([evaluator.evalQA[q] for q in range(len(preds))], dtype=torch.float64)
    return percent, elapsed  # per-question 100 * accuracy, as the official evalQA stores it


def _timed(fn):
    clear_caches()  # no help from earlier runs
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _metric_in_batches(preds, answers, kinds, batch: int = 256) -> torch.Tensor:
    metric = VQAAccuracy(by_answer_type=True)
    for i in range(0, len(preds), batch):
        s = slice(i, i + batch)
        metric.update(preds[s], answers[s], ids=list(range(i, i + len(preds[s]))), answer_types=kinds[s])
    return metric.compute()["overall"]


def run(official_vqa_eval: str | None, n: int = 214354, seed: int = 0) -> list[dict]:
    """Rows {"name", "ours_s", "ref_s", "speedup", "max_abs_diff"}; ref columns None without the script."""
    torch.set_num_threads(1)
    preds, answers, kinds = make_vqa_data(n, seed)
    ref, ref_s = (None, None)
    if official_vqa_eval:
        ref, ref_s = official_scores(load_official(official_vqa_eval), preds, answers, kinds)
    rows = []
    ours, ours_s = _timed(lambda: vqa_scores(preds, answers, "vqav2"))
    overall, metric_s = _timed(lambda: _metric_in_batches(preds, answers, kinds))
    diff_q = diff_all = None
    if ref is not None:  # per question: 100 * ours against the official evalQA (bit for bit)
        diff_q = (100 * ours - ref).abs().max().item() / 100
        diff_all = abs(overall.item() - ref.sum().item() / n / 100)
    for name, seconds, diff in [
        (f"vqa_scores vqav2 (n={n})", ours_s, diff_q),
        (f"VQAAccuracy, batches of 256 (n={n})", metric_s, diff_all),
    ]:
        rows.append(_row(name, seconds, ref_s, diff))
    for protocol in ("lavis", "evalai"):  # no reference script timed for these
        _, seconds = _timed(lambda p=protocol: vqa_scores(preds, answers, p))
        rows.append(_row(f"vqa_scores {protocol} (n={n})", seconds, None, None))
    return rows


def _row(name: str, ours_s: float, ref_s: float | None, diff: float | None) -> dict:
    speedup = None if ref_s is None else ref_s / ours_s
    return {"name": name, "ours_s": ours_s, "ref_s": ref_s, "speedup": speedup, "max_abs_diff": diff}


def format_rows(rows: list[dict]) -> str:
    def f(v, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    lines = [f"{'name':52s} {'ours_s':>8s} {'ref_s':>8s} {'speedup':>8s} {'max_abs_diff':>12s}"]
    for r in rows:
        lines.append(f"{r['name']:52s} {f(r['ours_s'], '8.3f')} {f(r['ref_s'], '8.3f')} "
                     f"{f(r['speedup'], '8.1f')} {f(r['max_abs_diff'], '12.2e')}")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-vqa-eval", default=None, help="path to the official vqaEval.py")
    parser.add_argument("--n", type=int, default=214354)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(format_rows(run(args.official_vqa_eval, args.n, args.seed)))


if __name__ == "__main__":
    main()
