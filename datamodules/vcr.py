"""VCR 1.0 (visualcommonsense.com; rowanz/r2c) in its official layout.

    <root>/train.jsonl  val.jsonl  test.jsonl     (vcr1annots.zip; test.jsonl has no labels)
    <root>/vcr1images/<img_fn>                    (vcr1images.zip: lsmdc_<movie>/<clip>@<n>.jpg)
    <root>/vcr1images/<metadata_fn>               (same name, .json: boxes [x1,y1,x2,y2,score], segms,
                                                   names, width, height)

Each line: ``movie, objects, img_fn, metadata_fn, question, answer_choices (4), rationale_choices (4),
answer_label, rationale_label, annot_id, img_id, question_number, ...``. Texts are token lists in
which an object reference is a list of indices into ``objects``. We render a reference as a tag made
of the object's name and its rank among objects of that name (objects ["person", "person", "car"]
-> person1, person2, car1; [0, 1] -> "person1 and person2"): readable by any tokenizer, stable
across the 4+4 choices of a question, and what the synthetic world's questions are written with
(r2c instead maps people to gender-neutral first names; boxes are not drawn: ViLT-style backbones
see the whole image).

Each line's metadata JSON is read once per image and checked against the line: its ``names`` must be
the line's ``objects`` and it needs one ``[x1, y1, x2, y2, score]`` box per object inside
``width`` x ``height``. Samples carry the boxes (``boxes``, xyxy pixels) for region-aware heads.
``check_metadata=false`` skips reading them (about 100k small files on the full dataset).

QA->R contexts are the question + the ground-truth answer for labelled splits (the official QA->R).
test.jsonl has no labels: it is predict-only, and its rationales are scored given each of the 4
answers, which is what the leaderboard asks for (``leaderboard_rows``).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from vltasks.datamodules.base import READERS, Collator, Problems, TaskData, candidate_inputs, jsonl_records
from vltasks.datamodules.checks import is_int, text_problem
from vltasks.datamodules.media import path_inside

log = logging.getLogger(__name__)

NUM_CHOICES = 4  # answers, and rationales, per question
_GLUE = re.compile(r" (?=[.,?!;:](?:\s|$)|n't\b|'(?:s|re|m|ll|ve|d)\b)")


def annotations_file(root: Path, split: str) -> Path:
    return root / f"{split}.jsonl"


def object_tags(objects: list[str]) -> list[str]:
    """One tag per detected object: its name and its rank among objects of that name, from 1."""
    seen: dict[str, int] = {}
    tags = []
    for name in objects:
        seen[name] = seen.get(name, 0) + 1
        tags.append(f"{name}{seen[name]}")
    return tags


def render(tokens: list[Any], tags: list[str]) -> str:
    """Token list with object references -> one string ("Is person1 happy ?" -> "Is person1 happy?")."""
    words = [" and ".join(tags[i] for i in t) if isinstance(t, list) else t for t in tokens]
    return _GLUE.sub("", " ".join(words))


def _tokens_problem(field: str, tokens: Any, n_objects: int) -> str | None:
    if not isinstance(tokens, list) or not tokens:
        return f"'{field}' must be a non-empty token list"
    for t in tokens:
        if isinstance(t, list):
            bad = [i for i in t if not is_int(i) or not 0 <= i < n_objects]
            if bad or not t:
                return f"'{field}': object index {bad or t} out of range ('objects' has {n_objects})"
        elif not isinstance(t, str):
            return f"'{field}': token {t!r} is neither a string nor a list of object indices"
    return None


def metadata_problem(meta: Any, objects: list[str]) -> str | None:
    """What is wrong with one image's metadata JSON, given the line's objects (None if nothing)."""
    if not isinstance(meta, dict):
        return "metadata is not a JSON object"
    width, height = meta.get("width"), meta.get("height")
    if not (is_int(width) and is_int(height)) or width <= 0 or height <= 0:
        return f"metadata needs positive integer 'width' and 'height', got {width!r} x {height!r}"
    if meta.get("names") != objects:
        return f"metadata 'names' {meta.get('names')!r} differ from the line's 'objects' {objects!r}"
    boxes = meta.get("boxes")
    if not isinstance(boxes, list) or len(boxes) != len(objects):
        n = len(boxes) if isinstance(boxes, list) else None
        return f"metadata has {n} 'boxes' for {len(objects)} objects"
    for k, box in enumerate(boxes):
        numbers = isinstance(box, list) and len(box) == 5
        numbers = numbers and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
        if not numbers:
            return f"metadata box #{k} must be [x1, y1, x2, y2, score], got {box!r}"
        if not all(math.isfinite(v) for v in box):
            return f"metadata box #{k} {box!r} holds a NaN or infinite number"
        x1, y1, x2, y2 = box[:4]
        if not (x2 > x1 and y2 > y1) or x1 >= width or y1 >= height or x2 <= 0 or y2 <= 0:
            return f"metadata box #{k} {box[:4]} is empty or outside the {width}x{height} image"
    return None


def record_problem(rec: dict[str, Any], labeled: bool) -> str | None:
    """What is wrong with one VCR line (None if nothing)."""
    if not isinstance(rec.get("annot_id"), str) or not rec["annot_id"]:
        return "needs a string 'annot_id'"
    objects = rec.get("objects")
    if not isinstance(objects, list) or not all(isinstance(o, str) for o in objects):
        return "'objects' must be a list of names"
    if not isinstance(rec.get("img_fn"), str) or not isinstance(rec.get("metadata_fn"), str):
        return "needs 'img_fn' and 'metadata_fn' strings"
    n = len(objects)
    problem = _tokens_problem("question", rec.get("question"), n)
    if problem is not None:
        return problem
    for field in ("answer_choices", "rationale_choices"):
        choices = rec.get(field)
        if not isinstance(choices, list) or len(choices) != NUM_CHOICES:
            return f"'{field}' must hold {NUM_CHOICES} token lists"
        for k, c in enumerate(choices):
            problem = _tokens_problem(f"{field}[{k}]", c, n)
            if problem is not None:
                return problem
    if bad_text := text_problem(
        {k: rec[k] for k in ("objects", "question", "answer_choices", "rationale_choices")}
    ):
        return bad_text
    if not labeled:
        return None
    for field in ("answer_label", "rationale_label"):
        if field not in rec:
            return f"missing '{field}' (other lines of this file have labels)"
        if not is_int(rec[field]) or not 0 <= rec[field] < NUM_CHOICES:
            return f"'{field}' {rec[field]!r} out of range [0, {NUM_CHOICES})"
    return None


def _read_metadata(path: Path) -> tuple[Any, str | None]:
    """(what the reader keeps of the metadata JSON, None) or (None, the problem). Only the size,
    names and boxes are kept: the polygons (``segms``) of ~100k images would take gigabytes."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "metadata file not found"
    except json.JSONDecodeError as e:
        return None, f"malformed metadata JSON (line {e.lineno} column {e.colno}: {e.msg})"
    except UnicodeDecodeError as e:
        return None, f"metadata is not UTF-8 ({e.reason} at byte {e.start})"
    if not isinstance(meta, dict):
        return None, f"metadata is not a JSON object but {type(meta).__name__}"
    return {k: meta[k] for k in ("width", "height", "names", "boxes") if k in meta}, None


class VCRCollator(Collator):
    """Q->A candidates (question, answer_k) as [B, 4, L] and QA->R candidates (question + answer,
    rationale_k): labelled batches condition the rationales on the GT answer ([B, 4, L]); unlabelled
    ones (test.jsonl) on each answer in turn ([B, 4, 4, L]), as the leaderboard needs.
    ``targets`` [B, 2]: the right answer and the right rationale.
    """

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.visual(samples)
        batch["answer_inputs"] = candidate_inputs(
            self.processor, [s["question"] for s in samples], [s["answers"] for s in samples]
        )
        labeled = all(s["answer_label"] is not None for s in samples)
        given = [[s["answers"][s["answer_label"]]] if labeled else s["answers"] for s in samples]
        rationales = candidate_inputs(
            self.processor,
            [f"{s['question']} {a}" for s, g in zip(samples, given) for a in g],
            [s["rationales"] for s, g in zip(samples, given) for _ in g],
        )
        lead = (len(samples),) if labeled else (len(samples), NUM_CHOICES)
        batch["rationale_inputs"] = {k: v.view(*lead, *v.shape[1:]) for k, v in rationales.items()}
        self.copy(batch, samples, lists=("sample_id", "question", "answers", "rationales"))
        if labeled:
            batch["targets"] = torch.tensor(
                [[s["answer_label"], s["rationale_label"]] for s in samples], dtype=torch.long
            )
        return batch


@READERS.register("vcr")
class VCRData(TaskData):
    format = "vcr"
    collator = VCRCollator
    options = {"check_images": True, "check_metadata": True, "image_dir": "vcr1images"}

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        path = annotations_file(self.root, split)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: annotations file not found for split {split!r}")
        lines = list(jsonl_records(path, problems))
        labeled = any(isinstance(r, dict) and "answer_label" in r for _, r in lines)
        if lines and not labeled:  # test.jsonl; anywhere else, say why no metric will appear
            log.warning("%s: no line has labels: split %r is read as predict-only (no metrics)", path, split)
        images = self.root / self.opts["image_dir"]
        samples, seen = [], set()
        metadata: dict[Path, Any] = {}  # one read per image: its questions share it
        for lineno, rec in lines:
            if not isinstance(rec, dict):
                problems.report(path, f"line {lineno}", "expected a JSON object")
                continue
            record = f"line {lineno} (annot_id={rec.get('annot_id')})"
            problem = record_problem(rec, labeled)
            if problem is None and rec["annot_id"] in seen:
                problem = "duplicate annot_id"
            if problem is not None:
                problems.report(path, record, problem)
                continue
            (image, bad_image), (meta, bad_meta) = (
                path_inside(images, rec[k]) for k in ("img_fn", "metadata_fn")
            )
            if bad_image or bad_meta:
                problems.report(path, record, bad_image or bad_meta)
                continue
            record = f"{path.name} {record}"  # reported against the image or metadata file below
            missing = [p for p in (image, meta) if not p.is_file()] if self.opts["check_images"] else []
            if missing:
                what = "image" if missing[0] == image else "metadata"
                problems.report(missing[0], record, f"{what} file not found")
                continue
            boxes, size = None, {}
            if self.opts["check_metadata"]:
                if meta not in metadata:
                    metadata[meta] = _read_metadata(meta)
                kept, problem = metadata[meta]
                problem = problem or metadata_problem(kept, rec["objects"])
                if problem is not None:
                    problems.report(meta, record, problem)
                    continue
                boxes = [b[:4] for b in kept["boxes"]]
                # checked against the decoded image when it loads, as RefCOCO's instances.json sizes
                size = {"width": kept["width"], "height": kept["height"], "size_from": str(meta)}
            seen.add(rec["annot_id"])
            tags = object_tags(rec["objects"])
            samples.append(
                {
                    "sample_id": rec["annot_id"],
                    "record": f"annot_id={rec['annot_id']}",
                    "annot_id": rec["annot_id"],
                    "image_path": str(image),
                    "metadata_path": str(meta),
                    "boxes": boxes,
                    "question": render(rec["question"], tags),
                    "answers": [render(c, tags) for c in rec["answer_choices"]],
                    "rationales": [render(c, tags) for c in rec["rationale_choices"]],
                    "answer_label": rec.get("answer_label"),
                    "rationale_label": rec.get("rationale_label"),
                    **size,
                }
            )
        return samples

    # -- what the head and tokenizer need --------------------------------------------------------
    def data_args(self) -> dict[str, Any]:
        return {"protocol": "vcr"}

    def texts(self) -> Iterable[str]:
        return [t for s in self.samples("train") for t in (s["question"], *s["answers"], *s["rationales"])]


def leaderboard_rows(predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Predictions on test.jsonl -> rows of the leaderboard CSV (r2c's eval_for_leaderboard.py):
    annot_id, answer_0..3, rationale_conditioned_on_a{j}_0..3 for j in 0..3."""
    rows = []
    for p in predictions:
        if "rationale_probs_given_answers" not in p:
            raise ValueError(f"annot_id={p.get('annot_id')}: leaderboard rows need test-split predictions")
        row: dict[str, Any] = {"annot_id": p["annot_id"]}
        row.update({f"answer_{i}": v for i, v in enumerate(p["answer_probs"])})
        for j, probs in enumerate(p["rationale_probs_given_answers"]):
            row.update({f"rationale_conditioned_on_a{j}_{i}": v for i, v in enumerate(probs)})
        rows.append(row)
    return rows
