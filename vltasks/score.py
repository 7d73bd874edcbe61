"""`vltasks score`: a submission file against a dataset's official annotation files.

One scorer per submission format, registered by name (``@SCORERS.register``) as heads and readers
are, so a task that adds a format adds its scorer next to it. A scorer reads the annotations with
the task's own reader (`vltasks.datamodules`; images are not needed, so not checked) and computes
with `vltasks.metrics`: the numbers are the ones training reports. It prints the table the
benchmark's own script prints (where there is one) and returns JSON-ready metrics. The video
tasks' formats (captions, rankings, temporal grounding, QA) are in `vltasks.score_video`, imported
at the end of this module so that they register with the rest.

Submissions must answer exactly the annotated split (as vqaEval.py asserts); a record of the
submission that is malformed, repeated or names no annotated sample is an error naming the file
and the record. Caption results are scored on the images they caption, as the COCO caption
evaluation does (every image must be annotated).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from vltasks.registry import Registry

Results = dict[Any, dict[str, Any]]  # result records by the id their format names them with
Pairs = list[tuple[dict[str, Any], dict[str, Any]]]  # (annotated sample, its result)


class ScoreError(ValueError):
    """A submission or annotation problem, naming the file and the record."""


@dataclass
class Inputs:
    """What a scorer reads: the submission, and the annotations (a dataset folder and split for
    the reader, or one ground-truth file)."""

    results: Path
    root: Path | None = None
    split: str | None = None
    gt: Path | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class Scores:
    metrics: dict[str, Any]  # JSON-ready
    lines: list[str]  # the printout, as the benchmark's own script prints it


class Scorer:
    """One submission format. ``reader``: the data format whose reader reads the annotations from
    ``--root`` / ``--split``; None: the scorer reads the ``--gt`` file itself."""

    description: ClassVar[str] = ""
    reader: ClassVar[str | None] = None
    split: ClassVar[str | None] = None  # the split scored when --split is not given
    reader_options: ClassVar[dict[str, Any]] = {"check_images": False}
    options: ClassVar[dict[str, Any]] = {}  # the scorer's own options (--option KEY=VALUE), defaults
    key: ClassVar[str] = ""  # the field naming a result record's sample
    fields: ClassVar[tuple[str, ...]] = ()  # the fields every result record needs

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, inputs: Inputs) -> Scores:
        own = {k: v for k, v in inputs.options.items() if k in self.options}
        opts = {**self.options, **{k: _typed(v, self.options[k]) for k, v in own.items()}}
        reader_opts = {k: v for k, v in inputs.options.items() if k not in self.options}
        results = read_results(inputs.results, self.key, self.fields)
        return self.score(results, inputs, opts, reader_opts)

    def score(
        self, results: Results, inputs: Inputs, opts: dict[str, Any], reader_opts: dict[str, str]
    ) -> Scores:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared steps ------------------------------------------------------------------------------
    def samples(self, inputs: Inputs, reader_opts: dict[str, str]) -> list[dict[str, Any]]:
        """The annotated split through the task's reader."""
        from vltasks.datamodules import READERS

        if inputs.root is None:
            raise ScoreError(f"{self.name}: --root (the dataset folder in its official layout) is required")
        split = inputs.split or self.split
        if not split:
            raise ScoreError(f"{self.name}: --split is required")
        cls = READERS.get(str(self.reader))
        typed = {k: _typed(v, cls.options.get(k)) for k, v in reader_opts.items()}
        try:
            reader = cls(str(inputs.root), {"test": split}, "error", **{**self.reader_options, **typed})
        except KeyError as e:  # an option the reader does not know
            raise ScoreError(f"{self.name}: {e.args[0]}; scorer options: {sorted(self.options)}") from None
        return reader.samples("test")

    def problem(self, sample: dict[str, Any], result: dict[str, Any]) -> str | None:
        """What is wrong with one result record (None: nothing); each format checks its fields."""
        return None

    def annotated(self, results: Results, inputs: Inputs, reader_opts: dict[str, str]) -> Pairs:
        """(sample, its result) for the annotated split, every result checked by `problem`."""
        pairs = self.matched(results, self.samples(inputs, reader_opts), inputs.results)
        for sample, result in pairs:
            problem = self.problem(sample, result)
            if problem is not None:
                raise ScoreError(f"{inputs.results}: result {self.key}={sample[self.key]!r}: {problem}")
        return pairs

    def matched(self, results: Results, samples: Iterable[dict[str, Any]], file: Path) -> Pairs:
        """(sample, its result) for every annotated sample; the submission must cover exactly them."""
        by_id = {s[self.key]: s for s in samples}
        missing = [k for k in by_id if k not in results]
        extra = [k for k in results if k not in by_id]
        if missing or extra:
            raise ScoreError(
                f"{file}: the results do not answer the annotated split: {len(missing)} of its {len(by_id)} "
                f"{self.key}s have no result (e.g. {missing[:3]}), {len(extra)} results name no annotated "
                f"{self.key} (e.g. {extra[:3]})"
            )
        return [(s, results[k]) for k, s in by_id.items()]


class SplitScorer(Scorer):
    """A scorer of a format that answers every sample of an annotated split: `compute` gets each
    sample (from the reader) with its result, every result already checked by `problem`."""

    def score(
        self, results: Results, inputs: Inputs, opts: dict[str, Any], reader_opts: dict[str, str]
    ) -> Scores:
        return self.compute(self.annotated(results, inputs, reader_opts), opts)

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:  # pragma: no cover - abstract
        raise NotImplementedError


SCORERS: Registry[type[Scorer]] = Registry("submission format")


def _typed(value: str, default: Any) -> Any:
    """A --option string as the type of the option's default."""
    if isinstance(default, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, (list, tuple)):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def read_results(path: Path, key: str, fields: tuple[str, ...]) -> Results:
    """A results JSON list (or jsonl, one record a line) by its id field; a record that is not an
    object, lacks a field or repeats an id is an error naming the file and the record."""
    from vltasks.datamodules.base import Problems, jsonl_records, load_json

    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"{path}: results file not found")
    if path.suffix == ".jsonl":
        records: Iterable[tuple[int, Any]] = jsonl_records(path, Problems("error"))
        where = "line"
    else:
        data = load_json(path)
        if not isinstance(data, list):
            raise ScoreError(f"{path}: expected a JSON list of result records, got {type(data).__name__}")
        records, where = enumerate(data), "record #"
    out: Results = {}
    for n, rec in records:
        name = f"{where} {n}" if where == "line" else f"{where}{n}"
        if not isinstance(rec, dict):
            raise ScoreError(f"{path}: {name}: expected an object, got {type(rec).__name__}")
        lacking = [f for f in (key, *fields) if f not in rec]
        if lacking:
            raise ScoreError(f"{path}: {name} ({key}={rec.get(key)!r}): missing {lacking}")
        ident = rec[key]
        if not isinstance(ident, (int, str)) or isinstance(ident, bool):
            raise ScoreError(f"{path}: {name}: {key} must be an integer or a string, got {ident!r}")
        if ident in out:
            raise ScoreError(f"{path}: {name}: a second result for {key}={ident!r}")
        out[ident] = rec
    if not out:
        raise ScoreError(f"{path}: no result records")
    return out


def _table(metrics: dict[str, Any], digits: int = 4) -> list[str]:
    width = max(len(k) for k in metrics)
    return [f"{k:<{width}}  {v:.{digits}f}" for k, v in metrics.items()]


def _floats(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, torch.Tensor) else v) for k, v in d.items()}


# -- VQAv2 --------------------------------------------------------------------------------------------
@SCORERS.register("vqav2")
class VQAv2Scorer(SplitScorer):
    description = "VQAv2 results [{question_id, answer}] against the questions + annotations JSON"
    reader, split = "vqav2", "val2014"
    options = {"protocol": "vqav2"}
    key, fields = "question_id", ("answer",)

    def problem(self, sample: dict[str, Any], result: dict[str, Any]) -> str | None:
        return None if isinstance(result["answer"], str) else "answer must be a string"

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:
        from vltasks.metrics.functional.vqa import vqa_scores

        per = vqa_scores(
            [r["answer"] for _, r in pairs], [s["answers"] for s, _ in pairs], opts["protocol"]
        ).tolist()
        by_q: dict[str, list[float]] = {}
        by_a: dict[str, list[float]] = {}
        for (s, _), acc in zip(pairs, per):
            by_q.setdefault(str(s.get("question_type")), []).append(acc)
            by_a.setdefault(str(s["answer_type"]), []).append(acc)

        def pct(values: list[float]) -> float:  # vqaEval.py: round(100 * sum / n, 2), sum in order
            return round(100 * float(sum(values)) / len(values), 2)

        accuracy = {
            "overall": pct(per),
            "perQuestionType": {q: pct(v) for q, v in by_q.items()},
            "perAnswerType": {a: pct(v) for a, v in by_a.items()},
        }
        lines = [
            "",
            f"Overall Accuracy is: {accuracy['overall']:.2f}",
            "",
            "Per Question Type Accuracy is the following:",
        ]
        lines += [f"{q} : {v:.2f}" for q, v in accuracy["perQuestionType"].items()]
        lines += ["", "Per Answer Type Accuracy is the following:"]
        lines += [f"{a} : {v:.2f}" for a, v in accuracy["perAnswerType"].items()]
        return Scores(accuracy, lines)


# -- COCO captions --------------------------------------------------------------------------------------
class _CaptionScorer(Scorer):
    """Shared by the COCO annotation file, Karpathy's splits and the video corpora: results
    [{<key>, caption}], one per captioned item (``item``: what the messages call them)."""

    options = {"metrics": ["Bleu", "METEOR", "ROUGE_L", "CIDEr"], "tokenizer": "ptb"}
    key, fields = "image_id", ("caption",)
    item: ClassVar[str] = "images"

    def references(
        self, inputs: Inputs, reader_opts: dict[str, str]
    ) -> dict[Any, list[str]]:  # pragma: no cover
        raise NotImplementedError

    def score(
        self, results: Results, inputs: Inputs, opts: dict[str, Any], reader_opts: dict[str, str]
    ) -> Scores:
        from vltasks.metrics import CaptionMetrics

        refs = self.references(inputs, reader_opts)
        unknown = [k for k in results if k not in refs]
        if unknown:
            raise ScoreError(
                f"{inputs.results}: {len(unknown)} results caption {self.item} the annotations do not "
                f"have (e.g. {self.key}={unknown[:3]})"
            )
        bad = [k for k, r in results.items() if not isinstance(r["caption"], str)]
        if bad:
            raise ScoreError(f"{inputs.results}: result {self.key}={bad[0]!r}: caption must be a string")
        ids = list(results)
        metric = CaptionMetrics(tuple(opts["metrics"]), tokenizer=opts["tokenizer"])
        metric.update([results[k]["caption"] for k in ids], [refs[k] for k in ids])
        values = _floats(dict(metric.compute()))
        return Scores(values, [f"{m}: {v:0.3f}" for m, v in values.items()])  # COCOEvalCap's printout


@SCORERS.register("coco_caption")
class COCOCaptionScorer(_CaptionScorer):
    description = "COCO caption results [{image_id, caption}] against captions_<split>.json (--gt)"

    def references(self, inputs: Inputs, reader_opts: dict[str, str]) -> dict[Any, list[str]]:
        from vltasks.datamodules.coco_captions import read_coco_captions

        if inputs.gt is None:
            raise ScoreError("coco_caption: --gt (the COCO captions annotation file) is required")
        return read_coco_captions(inputs.gt)


@SCORERS.register("karpathy_caption")
class KarpathyCaptionScorer(_CaptionScorer):
    description = "COCO caption results [{image_id, caption}] against Karpathy's dataset_coco.json split"
    reader, split = "karpathy_caption", "test"

    def references(self, inputs: Inputs, reader_opts: dict[str, str]) -> dict[Any, list[str]]:
        return {s["image_id"]: s["captions"] for s in self.samples(inputs, reader_opts)}


# -- retrieval ------------------------------------------------------------------------------------------
@SCORERS.register("karpathy")
class RetrievalScorer(SplitScorer):
    description = "image-to-text rankings [{image_id, ranked_text_ids}] against a Karpathy split"
    reader, split, key, fields = "karpathy", "test", "image_id", ("ranked_text_ids",)

    def problem(self, sample: dict[str, Any], result: dict[str, Any]) -> str | None:
        return None if isinstance(result["ranked_text_ids"], list) else "ranked_text_ids must be a list"

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:
        from vltasks.metrics.functional.retrieval import recall_from_ranks

        never = torch.iinfo(torch.long).max  # a caption the ranking does not list is never a hit
        ranks, owner = [], []
        for i, (s, r) in enumerate(pairs):
            ranked = r["ranked_text_ids"]
            position = {t: p for p, t in reversed(list(enumerate(ranked)))}
            ranks += [position.get(sid, never) for sid in s["sentids"]]
            owner += [i] * len(s["sentids"])
        i2t, text_image = torch.tensor(ranks), torch.tensor(owner)
        recalls = recall_from_ranks(i2t, torch.zeros_like(i2t), text_image, len(pairs))
        values = {k: float(v) for k, v in recalls.items() if k.startswith("txt_")}
        note = "image-to-text only: a ranking of captions per image says nothing about text-to-image"
        return Scores(values, [*_table(values), note])


# -- grounding ------------------------------------------------------------------------------------------
@SCORERS.register("refcoco")
class RefCOCOScorer(SplitScorer):
    description = (
        "RefCOCO/+/g boxes [{sent_id, bbox: [x, y, w, h]}] against refs(<split_by>).p + instances.json"
    )
    reader, split, key, fields = "refcoco", "val", "sent_id", ("bbox",)

    def problem(self, sample: dict[str, Any], result: dict[str, Any]) -> str | None:
        return None if _numbers(result["bbox"], 4) else "bbox must be 4 finite numbers [x, y, w, h]"

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:
        from vltasks.metrics import GroundingAccuracy

        groups = sorted({s["split"] for s, _ in pairs})
        metric = GroundingAccuracy(0.5, box_format="xywh", groups=groups)
        metric.update(
            torch.tensor([r["bbox"] for _, r in pairs], dtype=torch.float64),
            torch.tensor([s["bbox"] for s, _ in pairs], dtype=torch.float64),
            groups=[s["split"] for s, _ in pairs],
        )
        values = {f"acc@0.5_{g}": float(v) for g, v in metric.compute().items()}
        return Scores(values, _table(values))


# -- SNLI-VE, VCR, Visual7W ---------------------------------------------------------------------------
@SCORERS.register("snli_ve")
class SNLIVEScorer(SplitScorer):
    description = "SNLI-VE labels [{pairID, label}] against snli_ve_<split>.jsonl"
    reader, split, key, fields = "snli_ve", "test", "pairID", ("label",)

    def problem(self, sample: dict[str, Any], result: dict[str, Any]) -> str | None:
        from vltasks.metrics.functional.choice import ENTAILMENT_CLASSES

        return None if result["label"] in ENTAILMENT_CLASSES else f"label must be one of {ENTAILMENT_CLASSES}"

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:
        from vltasks.metrics import EntailmentAccuracy
        from vltasks.metrics.functional.choice import ENTAILMENT_CLASSES

        metric = EntailmentAccuracy(class_names=ENTAILMENT_CLASSES)
        metric.update(
            torch.tensor([ENTAILMENT_CLASSES.index(r["label"]) for _, r in pairs]),
            torch.tensor([ENTAILMENT_CLASSES.index(s["gold_label"]) for s, _ in pairs]),
        )
        values = _floats(dict(metric.compute()))
        return Scores(values, _table(values))


@SCORERS.register("vcr")
class VCRScorer(SplitScorer):
    description = "VCR probabilities [{annot_id, answer_probs, rationale_probs}] against <split>.jsonl"
    reader, split = "vcr", "val"
    reader_options = {"check_images": False, "check_metadata": False}
    key, fields = "annot_id", ("answer_probs", "rationale_probs")

    def problem(self, sample: dict[str, Any], result: dict[str, Any]) -> str | None:
        if not all(_numbers(result[f], 4) for f in self.fields):
            return "answer_probs and rationale_probs need 4 numbers each"
        return None if sample["answer_label"] is not None else "the annotated split has no labels"

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:
        from vltasks.metrics import VCRAccuracy

        metric = VCRAccuracy()
        metric.update(
            torch.tensor([r["answer_probs"] for _, r in pairs], dtype=torch.float64),
            torch.tensor([s["answer_label"] for s, _ in pairs]),
            torch.tensor([r["rationale_probs"] for _, r in pairs], dtype=torch.float64),
            torch.tensor([s["rationale_label"] for s, _ in pairs]),
        )
        values = _floats(dict(metric.compute()))
        return Scores(values, _table(values))


def _numbers(x: Any, n: int) -> bool:
    """A list of ``n`` finite numbers."""
    return (
        isinstance(x, list)
        and len(x) == n
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in x)
    )


@SCORERS.register("visual7w")
class Visual7WScorer(SplitScorer):
    description = "Visual7W telling [{qa_id, candidates: [{answer}]}] against dataset_v7w_telling.json"
    reader, split, key, fields = "visual7w", "test", "qa_id", ("candidates",)

    def problem(self, sample: dict[str, Any], result: dict[str, Any]) -> str | None:
        c = result["candidates"]
        ok = isinstance(c, list) and c and isinstance(c[0], dict) and isinstance(c[0].get("answer"), str)
        return None if ok else "candidates must start with {'answer': str} (the chosen one)"

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:
        from vltasks.metrics import MultipleChoiceAccuracy

        chosen = [r["candidates"][0]["answer"] for _, r in pairs]
        values: dict[str, float] = {}
        for t in [None, *sorted({s["question_type"] for s, _ in pairs})]:
            keep = [i for i, (s, _) in enumerate(pairs) if t is None or s["question_type"] == t]
            metric = MultipleChoiceAccuracy()
            metric.update([chosen[i] for i in keep], [pairs[i][0]["answer"] for i in keep])
            values["accuracy" if t is None else f"accuracy_{t}"] = float(metric.compute())
        return Scores(values, _table(values))


# -- QVHighlights ---------------------------------------------------------------------------------------
@SCORERS.register("qvhighlights")
class QVHighlightsScorer(Scorer):
    description = "QVHighlights submission jsonl against the GT jsonl (--gt), as Moment-DETR's eval.py"
    options = {"match_number": True}
    key = "qid"

    def score(
        self, results: Results, inputs: Inputs, opts: dict[str, Any], reader_opts: dict[str, str]
    ) -> Scores:
        from vltasks.datamodules.base import Problems, jsonl_records
        from vltasks.metrics import qvhighlights_eval

        if inputs.gt is None or not Path(inputs.gt).is_file():
            raise ScoreError(f"qvhighlights: --gt (the GT jsonl) is required; got {inputs.gt}")
        gt = [rec for _, rec in jsonl_records(Path(inputs.gt), Problems("error"))]
        try:
            metrics = qvhighlights_eval(list(results.values()), gt, match_number=opts["match_number"])
        except (KeyError, ValueError) as e:
            raise ScoreError(f"{inputs.results} against {inputs.gt}: {e}") from e
        return Scores(metrics, json.dumps(metrics["brief"], indent=4).splitlines())


# -- dense captioning (Visual Genome) -----------------------------------------------------------------
METEOR_MODES = ("auto", "java", "never")  # the densecap head's ``meteor`` choices


def _no_meteor(preds: list[str], refs: list[list[str]]) -> list[float]:
    """Every caption scores 0: only the detection-only AP (METEOR threshold -1) then means anything."""
    return [0.0] * len(preds)


@SCORERS.register("visual_genome")
class DenseCapScorer(SplitScorer):
    description = (
        "dense captions [{image_id, boxes: [[x, y, w, h]], captions, scores}] against region_descriptions"
        ".json + densecap_splits.json"
    )
    reader, split = "visual_genome", "test"
    options = {"meteor": "auto"}  # as the densecap head's: auto (det_map only without Java), java, never
    key, fields = "image_id", ("boxes", "captions", "scores")

    def problem(self, sample: dict[str, Any], result: dict[str, Any]) -> str | None:
        boxes, captions, scores = (result[f] for f in self.fields)
        if not isinstance(boxes, list) or not all(_numbers(b, 4) for b in boxes):
            return "boxes must be a list of [x, y, w, h] (4 finite numbers each)"
        if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
            return "captions must be a list of strings"
        if not _numbers(scores, len(scores) if isinstance(scores, list) else -1):
            return "scores must be a list of finite numbers"
        if not len(boxes) == len(captions) == len(scores):
            return (
                f"{len(boxes)} boxes, {len(captions)} captions and {len(scores)} scores: one of each per box"
            )
        return None

    def compute(self, pairs: Pairs, opts: dict[str, Any]) -> Scores:
        from torchvision.ops import box_convert

        from vltasks.metrics import DenseCapMAP
        from vltasks.metrics.functional.densecap import inclusive_corners, meteor_problem

        mode = opts["meteor"]
        if mode not in METEOR_MODES:
            raise ScoreError(f"{self.name}: --option meteor must be one of {METEOR_MODES}, got {mode!r}")
        missing = "--option meteor=never turns it off" if mode == "never" else meteor_problem()
        if missing and mode == "java":
            raise ScoreError(f"{self.name}: meteor=java, but METEOR cannot run: {missing}")
        metric = DenseCapMAP() if missing is None else DenseCapMAP(meteor=_no_meteor)
        # the head's update_metrics: pixel corners (x2 - x1 = width) -> DenseCap's inclusive corners
        preds = [
            {
                "boxes": inclusive_corners(
                    box_convert(torch.tensor(r["boxes"], dtype=torch.float64).reshape(-1, 4), "xywh", "xyxy")
                ),
                "scores": torch.tensor(r["scores"], dtype=torch.float64),
                "captions": r["captions"],
            }
            for _, r in pairs
        ]
        truth = [
            {"boxes": inclusive_corners(torch.as_tensor(s["boxes"]).float()), "captions": s["phrases"]}
            for s, _ in pairs
        ]
        metric.update(preds, truth, ids=[s["image_id"] for s, _ in pairs])
        values = _floats(dict(metric.compute()))
        if missing is None:
            return Scores(values, _table(values))
        values = {"det_map": values["det_map"]}  # never a map that would read as a measured 0
        return Scores(
            values, [*_table(values), f"map not reported: it needs METEOR, which cannot run: {missing}"]
        )


# -- the command ---------------------------------------------------------------------------------------
def score(format: str, inputs: Inputs) -> Scores:
    """Score ``inputs`` with the scorer registered for ``format``."""
    return SCORERS.get(format)(format)(inputs)


def score_main(
    parser: argparse.ArgumentParser, args: argparse.Namespace, out: Callable[[str], None] = print
) -> int:
    """`vltasks score FORMAT RESULTS [--root DIR --split NAME | --gt FILE] [--option K=V] [--out F]`."""
    from vltasks.datamodules import BadSampleError

    if args.list or not args.format:
        for name in SCORERS:
            out(f"{name:<18} {SCORERS.get(name).description}")
        return 0
    if not args.results:
        parser.error("score: give the submission file after the format")
    options = {}
    for item in args.option:
        if "=" not in item:
            parser.error(f"score: --option {item!r} is not KEY=VALUE")
        k, v = item.split("=", 1)
        options[k] = v
    inputs = Inputs(
        Path(args.results),
        Path(args.root) if args.root else None,
        args.split,
        Path(args.gt) if args.gt else None,
        options,
    )
    if args.format not in SCORERS:
        print(f"score error: unknown format {args.format!r}; known: {', '.join(SCORERS)}", file=sys.stderr)
        return 2
    try:
        result = score(args.format, inputs)
    except (ScoreError, BadSampleError, FileNotFoundError) as e:
        print(f"score error: {e}", file=sys.stderr)
        return 1
    for line in result.lines:
        out(line)
    path = Path(args.out) if args.out else inputs.results.with_name(inputs.results.name + ".scores.json")
    path.write_text(json.dumps(result.metrics, indent=2))
    out(f"\nscores: {path}")
    return 0


# the video tasks' formats register themselves there (kept apart to keep this file short)
from vltasks import score_video  # noqa: E402, F401
