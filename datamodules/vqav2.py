"""VQAv2 in its official layout (visualqa.org downloads + COCO images).

    <root>/v2_OpenEnded_mscoco_<split>_questions.json
    <root>/v2_mscoco_<split>_annotations.json        (absent for test2015 / test-dev2015)
    <root>/<image_split>/COCO_<image_split>_<image_id:012d>.jpg

test-dev2015 questions point at test2015 images. Answers are normalized with the official VQA
processing to build the vocabulary; each answer's soft target is its official VQA score.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable
from pathlib import Path
from typing import Any

import torch
from vltasks.datamodules.base import READERS, BadSampleError, Collator, Problems, TaskData, load_json
from vltasks.datamodules.checks import id_problem, is_int, text_problem

from vltasks.metrics.functional.vqa import normalize_vqa_answer

ANSWER_TYPES = ("yes/no", "number", "other")


def questions_file(root: Path, split: str) -> Path:
    return root / f"v2_OpenEnded_mscoco_{split}_questions.json"


def annotations_file(root: Path, split: str) -> Path:
    return root / f"v2_mscoco_{split}_annotations.json"


def image_file(root: Path, split: str, image_id: int) -> Path:
    image_split = "test2015" if split.startswith("test") else split
    return root / image_split / f"COCO_{image_split}_{image_id:012d}.jpg"


def vqa_score(matches: int, n: int = 10) -> float:
    """Official score of an answer given by `matches` of `n` annotators (leave-one-out mean)."""
    if n <= 1:
        return float(min(1.0, matches / 3))
    hit = matches * min(1.0, (matches - 1) / 3)
    miss = (n - matches) * min(1.0, matches / 3)
    return (hit + miss) / n


def _annotation_problem(a: Any, seen: tuple[Container[int], ...]) -> str | None:
    """What is wrong with one annotation record (None if nothing)."""
    qid = a.get("question_id") if isinstance(a, dict) else None
    if problem := id_problem(qid, seen, "question_id", "a second annotation for this question_id"):
        return problem
    answers = a.get("answers")
    if not isinstance(answers, list) or not answers:
        return "empty or missing 'answers' list"
    if not all(isinstance(x, dict) and isinstance(x.get("answer"), str) for x in answers):
        return "each answer must be an object with an 'answer' string"
    if a.get("answer_type") not in ANSWER_TYPES:
        return f"'answer_type' must be one of {ANSWER_TYPES}"
    return text_problem(a)


class VQACollator(Collator):
    """Batch = processor outputs + soft targets + the fields predictions and metrics need."""

    def __init__(self, processor: Any, args: dict[str, Any] | None = None) -> None:
        super().__init__(processor)
        self.index = {a: i for i, a in enumerate((args or {})["answers"])}

    def targets(self, answers: list[str]) -> dict[int, float]:
        counts = Counter(normalize_vqa_answer(a) for a in answers)
        return {self.index[a]: vqa_score(m, len(answers)) for a, m in counts.items() if a in self.index}

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.visual(samples)  # an image, or a clip (video QA)
        batch.update(self.processor.text([s["question"] for s in samples]))
        # integer question ids as a tensor; string ones (ActivityNet-QA, TGIF-QA) as a list
        qid = ("question_id",) if all(is_int(s["question_id"]) for s in samples) else ()
        self.copy(batch, samples, lists=("sample_id", "question", *({"question_id"} - set(qid))), ids=qid)
        if all(s["answers"] is not None for s in samples):
            targets = torch.zeros(len(samples), len(self.index))
            for i, s in enumerate(samples):
                for j, score in self.targets(s["answers"]).items():
                    targets[i, j] = score
            batch["targets"] = targets
            self.copy(batch, samples, lists=("answers", "answer_type"))
        return batch


@READERS.register("vqav2")
class VQAv2Data(TaskData):
    format = "vqav2"
    collator = VQACollator
    options = {"min_answer_count": 9, "check_images": True}

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        qfile = questions_file(self.root, split)
        qdata = load_json(qfile)
        if not isinstance(qdata, dict) or not isinstance(qdata.get("questions"), list):
            raise BadSampleError(f"{qfile}: expected an object with a 'questions' list")
        annotations, bad = self._read_annotations(split, problems)
        samples, seen = [], set()
        for i, q in enumerate(qdata["questions"]):
            record = f"question #{i} (question_id={q.get('question_id') if isinstance(q, dict) else None})"
            if not isinstance(q, dict) or not is_int(q.get("question_id")) or not is_int(q.get("image_id")):
                problems.report(qfile, record, "needs integer 'question_id' and 'image_id'")
                continue
            qid = q["question_id"]
            record = f"question_id={qid}"
            if not isinstance(q.get("question"), str) or not q["question"].strip():
                problems.report(qfile, record, "empty or missing 'question' text")
                continue
            if bad_text := text_problem(q):
                problems.report(qfile, record, bad_text)
                continue
            if qid in seen:
                problems.report(qfile, record, "duplicate question_id")
                continue
            image = image_file(self.root, split, q["image_id"])
            if self.opts["check_images"] and not image.is_file():
                problems.report(image, record, "image file not found")
                continue
            sample = {
                "sample_id": str(qid),
                "record": record,
                "question_id": qid,
                "image_id": q["image_id"],
                "image_path": str(image),
                "question": q["question"].strip(),
                "answers": None,
                "answer_type": None,
                "question_type": None,
            }
            if annotations is not None:
                ann = annotations.get(qid)
                if qid in bad:
                    continue  # its annotation was reported (and counted) already
                if ann is None:
                    problems.report(annotations_file(self.root, split), record, "question has no annotation")
                    continue
                sample.update(ann)
            seen.add(qid)
            samples.append(sample)
        return samples

    def _read_annotations(
        self, split: str, problems: Problems
    ) -> tuple[dict[int, dict[str, Any]] | None, set[Any]]:
        """Annotations by question_id, and the ids whose annotation was bad (reported already)."""
        afile = annotations_file(self.root, split)
        if not afile.exists():
            if split.startswith("test"):
                return None, set()  # test splits are published without answers: predict only
            raise FileNotFoundError(f"{afile}: annotations file not found for split {split!r}")
        adata = load_json(afile)
        if not isinstance(adata, dict) or not isinstance(adata.get("annotations"), list):
            raise BadSampleError(f"{afile}: expected an object with an 'annotations' list")
        out: dict[int, dict[str, Any]] = {}
        bad: set[Any] = set()
        for i, a in enumerate(adata["annotations"]):
            qid = a.get("question_id") if isinstance(a, dict) else None
            record = f"annotation #{i} (question_id={qid})"
            problem = _annotation_problem(a, (out, bad))
            if problem is not None:
                problems.report(afile, record, problem)
                if is_int(qid):
                    bad.add(qid)
                continue
            out[qid] = {
                "answers": [x["answer"] for x in a["answers"]],
                "answer_type": a["answer_type"],
                "question_type": a.get("question_type"),
            }
        return out, bad

    # -- what the head and tokenizer need --------------------------------------------------------
    def data_args(self) -> dict[str, Any]:
        counts: Counter[str] = Counter()
        for s in self.samples("train"):
            counts.update(normalize_vqa_answer(a) for a in s["answers"])
        keep = [a for a, c in counts.items() if c >= self.opts["min_answer_count"] and a]
        return {"answers": sorted(keep, key=lambda a: (-counts[a], a))}

    def texts(self) -> Iterable[str]:
        return [s["question"] for s in self.samples("train")]
