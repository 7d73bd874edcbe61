"""Visual7W telling (multiple choice) in its official layout (Zhu et al., CVPR 2016).

    <root>/dataset_v7w_telling.json   (dataset_v7w_telling.zip; the toolkit renames it dataset.json,
                                       which is read when the original name is absent)
    <root>/images/v7w_<image_id>.jpg  (visual7w_images.zip)

One JSON holds every split: ``{"images": [{"image_id", "filename", "split", "qa_pairs": [{"qa_id",
"image_id", "question", "answer", "multiple_choices": [3 wrong], "type"}]}]}``. The 4 candidates are
the answer and the 3 wrong choices in an order drawn from (shuffle_seed, qa_id): deterministic, and
the answer's position carries no signal. The official score compares the chosen candidate's text
with the answer (lower-cased), which is what the metric does.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from vltasks.datamodules.base import (
    READERS,
    BadSampleError,
    Collator,
    Problems,
    TaskData,
    candidate_inputs,
    load_json,
)
from vltasks.datamodules.checks import id_problem, is_int, text_problem
from vltasks.datamodules.media import path_inside

DATASET_FILES = ("dataset_v7w_telling.json", "dataset.json")
NUM_CHOICES = 4
SPLITS = ("train", "val", "test")


def _text(x: Any) -> bool:
    return isinstance(x, str) and bool(x.strip())


def candidate_order(seed: int, qa_id: int, n: int = NUM_CHOICES) -> list[int]:
    """Position -> index into [answer, *multiple_choices]; a fixed permutation per question."""
    return [int(i) for i in np.random.default_rng([int(seed), int(qa_id)]).permutation(n)]


def _qa_problem(qa: Any, image_id: int, seen: set[int]) -> str | None:
    """What is wrong with one qa record of an image (None if nothing)."""
    if problem := id_problem(qa.get("qa_id") if isinstance(qa, dict) else None, seen, "qa_id"):
        return problem
    wrong = qa.get("multiple_choices")
    if not _text(qa.get("question")) or not _text(qa.get("answer")):
        return "empty or missing 'question' or 'answer'"
    if not isinstance(wrong, list) or len(wrong) != NUM_CHOICES - 1 or not all(map(_text, wrong)):
        return f"'multiple_choices' must hold {NUM_CHOICES - 1} non-empty strings"
    if qa.get("image_id", image_id) != image_id:
        return f"names image_id={qa['image_id']} but is listed under image_id={image_id}"
    if not _text(qa.get("type")):
        return "needs a 'type' (what, where, when, who, why or how)"
    if qa["answer"].strip().lower() in {w.strip().lower() for w in wrong}:
        return f"a wrong choice equals the answer {qa['answer']!r}: no single right candidate"
    return text_problem(qa)


class Visual7WCollator(Collator):
    """Images once per sample; (question, candidate) pairs as [B, K, L] (the head repeats each
    image for its K rows); ``targets`` [B, 1], the right candidate's position."""

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.visual(samples)
        batch["answer_inputs"] = candidate_inputs(
            self.processor, [s["question"] for s in samples], [s["candidates"] for s in samples]
        )
        lists = ("sample_id", "question", "candidates", "answer", "question_type")
        self.copy(batch, samples, lists=lists, ids=("qa_id",))
        batch["targets"] = torch.tensor([[s["label"]] for s in samples], dtype=torch.long)
        return batch


@READERS.register("visual7w")
class Visual7WData(TaskData):
    format = "visual7w"
    collator = Visual7WCollator
    options = {"check_images": True, "shuffle_seed": 0, "image_dir": "images"}

    def dataset_file(self) -> Path:
        for name in DATASET_FILES:
            if (self.root / name).is_file():
                return self.root / name
        raise FileNotFoundError(f"{self.root}: neither of {', '.join(DATASET_FILES)} found")

    def _images(self) -> tuple[Path, list[Any]]:
        if "_file" not in self.__dict__:  # one JSON for all splits: parsed once
            path = self.dataset_file()
            data = load_json(path)
            if not isinstance(data, dict) or not isinstance(data.get("images"), list):
                raise BadSampleError(f"{path}: expected an object with an 'images' list")
            self._file = (path, data["images"])
        return self._file

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        path, images = self._images()
        samples: list[dict[str, Any]] = []
        seen: set[int] = set()
        for i, img in enumerate(images):
            ok = isinstance(img, dict)
            if ok and img.get("split") in SPLITS and img["split"] != split:
                continue  # another split's image (an unknown split name is reported by every split)
            record = f"image #{i} (image_id={img.get('image_id') if ok else None})"
            if not ok or not is_int(img.get("image_id")) or not _text(img.get("filename")):
                problems.report(path, record, "needs an integer 'image_id' and a 'filename'")
                continue
            if img.get("split") not in SPLITS or not isinstance(img.get("qa_pairs"), list):
                problem = f"needs a 'split' in {SPLITS} (got {img.get('split')!r}) and a 'qa_pairs' list"
                problems.report(path, record, problem)
                continue
            image, problem = path_inside(self.root / self.opts["image_dir"], img["filename"])
            if problem is not None:
                problems.report(path, record, problem)
                continue
            for qa in img["qa_pairs"]:
                sample = self._sample(path, qa, image, img, problems, seen)
                if sample is not None:
                    seen.add(sample["qa_id"])
                    samples.append(sample)
        return samples

    def _sample(
        self, path: Path, qa: Any, image: Path, img: dict, problems: Problems, seen: set[int]
    ) -> dict[str, Any] | None:
        qa_id = qa.get("qa_id") if isinstance(qa, dict) else None
        record = f"qa_id={qa_id} (image_id={img['image_id']})"
        problem = _qa_problem(qa, img["image_id"], seen)
        if problem is None and self.opts["check_images"] and not image.is_file():
            path, problem = image, "image file not found"
        if problem is not None:
            problems.report(path, record, problem)
            return None
        texts = [qa["answer"], *qa["multiple_choices"]]
        order = candidate_order(self.opts["shuffle_seed"], qa_id)
        return {
            "sample_id": str(qa_id),
            "record": f"qa_id={qa_id}",
            "qa_id": qa_id,
            "image_id": img["image_id"],
            "image_path": str(image),
            "question": qa["question"].strip(),
            "answer": qa["answer"],
            "candidates": [texts[k] for k in order],
            "label": order.index(0),
            "question_type": qa["type"].strip(),
        }

    # -- what the head and tokenizer need --------------------------------------------------------
    def data_args(self) -> dict[str, Any]:
        types = sorted({s["question_type"] for s in self.samples("train")} - {""})
        return {"protocol": "visual7w", "question_types": types}

    def texts(self) -> Iterable[str]:
        return [t for s in self.samples("train") for t in (s["question"], *s["candidates"])]
