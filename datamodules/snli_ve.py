"""SNLI-VE in its official layout (necla-ml/SNLI-VE jsonl + Flickr30k images).

    <root>/snli_ve_<split>.jsonl                (train, dev, test: all labelled)
    <root>/<image_dir>/<Flickr30K_ID>.jpg       (image_dir defaults to flickr30k_images)

One SNLI pair per line. The image is the premise; ``sentence2`` (the hypothesis) is the text the
model reads; ``sentence1`` (the caption SNLI annotators saw) is kept for display only. The image id is
``Flickr30K_ID`` (2020 generator, "3416050480") or ``Flikr30kID`` (2018 release, "3416050480.jpg").
SNLI marks pairs without annotator consensus ``gold_label: "-"``; the official generator drops them,
so one in a file is reported as a bad record (skip it with ``data.on_bad_sample=skip``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from vltasks.datamodules.base import READERS, Collator, Problems, TaskData, jsonl_records
from vltasks.datamodules.checks import text_problem
from vltasks.datamodules.media import path_inside

from vltasks.metrics.functional.choice import ENTAILMENT_CLASSES

LABELS = frozenset(ENTAILMENT_CLASSES)
IMAGE_KEYS = ("Flickr30K_ID", "Flikr30kID")


def jsonl_file(root: Path, split: str, annotation_dir: str = "") -> Path:
    return root / annotation_dir / f"snli_ve_{split}.jsonl"


def image_file(root: Path, image_id: str, image_dir: str = "flickr30k_images") -> Path:
    return root / image_dir / f"{image_id}.jpg"


def _image_id(rec: dict[str, Any]) -> str | None:
    """The Flickr30k id without the '.jpg' the 2018 release appends; None when absent."""
    for key in IMAGE_KEYS:
        value = rec.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and value.strip():
            value = value.strip()
            return value[: -len(".jpg")] if value.endswith(".jpg") else value
    return None


class EntailmentCollator(Collator):
    """Batch = processor outputs (image, hypothesis) + class targets in the metric's label order."""

    index = {c: i for i, c in enumerate(ENTAILMENT_CLASSES)}

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = self.processor(
            [s["image"] for s in samples], [s["hypothesis"] for s in samples]
        )
        self.copy(
            batch, samples, lists=("sample_id", "pairID", "hypothesis", "premise", "image_path", "gold_label")
        )
        batch["targets"] = torch.tensor([self.index[s["gold_label"]] for s in samples], dtype=torch.long)
        return batch


@READERS.register("snli_ve")
class SNLIVEData(TaskData):
    format = "snli_ve"
    collator = EntailmentCollator
    options = {"image_dir": "flickr30k_images", "annotation_dir": "", "check_images": True}

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        path = jsonl_file(self.root, split, self.opts["annotation_dir"])
        if not path.is_file():
            raise FileNotFoundError(f"{path}: SNLI-VE file not found for split {split!r}")
        samples: list[dict[str, Any]] = []
        seen: dict[str, int] = {}
        for n, rec in jsonl_records(path, problems):
            sample = self._parse(path, n, rec, problems, seen)
            if sample is not None:
                samples.append(sample)
        return samples

    def _parse(
        self, path: Path, n: int, rec: Any, problems: Problems, seen: dict[str, int]
    ) -> dict[str, Any] | None:
        """One parsed line -> a sample, or None after reporting what is wrong with it."""
        if not isinstance(rec, dict):
            problems.report(path, f"line {n}", f"expected a JSON object, got {type(rec).__name__}")
            return None
        pid = rec.get("pairID")
        if not isinstance(pid, str) or not pid.strip():
            problems.report(path, f"line {n}", "missing or empty 'pairID'")
            return None
        record = f"line {n} (pairID={pid})"
        label = rec.get("gold_label")
        image_id = _image_id(rec)
        problem = None
        if label is None:
            problem = "missing 'gold_label'"
        elif label == "-":
            problem = "gold_label '-' (no annotator consensus; the official SNLI-VE drops such pairs)"
        elif label not in LABELS:
            problem = f"unknown gold_label {label!r}; expected one of {', '.join(ENTAILMENT_CLASSES)}"
        elif not isinstance(rec.get("sentence2"), str) or not rec["sentence2"].strip():
            problem = "empty or missing 'sentence2' (the hypothesis)"
        elif image_id is None:
            problem = f"no image id: needs '{IMAGE_KEYS[0]}' (or the 2018 release's '{IMAGE_KEYS[1]}')"
        elif pid in seen:
            problem = f"duplicate pairID (first on line {seen[pid]})"
        else:
            problem = text_problem(rec)
        image, bad_path = (
            path_inside(self.root / self.opts["image_dir"], f"{image_id}.jpg") if image_id else (None, None)
        )
        problem = problem or bad_path
        if problem is not None:
            problems.report(path, record, problem)
            return None
        if self.opts["check_images"] and not image.is_file():
            problems.report(path, record, f"image file not found: {image}")
            return None
        seen[pid] = n
        premise = rec.get("sentence1")
        return {
            "sample_id": pid,
            "record": f"pairID={pid}",
            "pairID": pid,
            "image_id": image_id,
            "image_path": str(image),
            "hypothesis": rec["sentence2"].strip(),
            "premise": premise.strip() if isinstance(premise, str) else "",
            "gold_label": label,
        }

    # -- what the head and tokenizer need --------------------------------------------------------
    def texts(self) -> Iterable[str]:
        return [s["hypothesis"] for s in self.samples("train")]
