"""What the video QA readers share: three kinds of question, their batches and what heads learn.

- ``open``: open-ended, classification over the training answers (MSRVTT-QA, MSVD-QA,
  ActivityNet-QA, TGIF-QA FrameQA) with the ``vqa`` head. One answer per question: the target is
  1 on that answer and the metric plain accuracy (``protocol="exact"``); an answer outside the
  training vocabulary has no target and always scores 0, as the benchmarks count it wrong.
- ``choice``: 5 candidates (TGIF-QA Action / Transition, NExT-QA) with the ``multiple_choice`` head,
  ``targets`` [B, 1] the right candidate's position.
- ``count``: an integer (TGIF-QA Count) with the ``count`` head, ``targets`` [B] the count.

A reader implements ``read`` (samples with ``question``, ``question_type``, the clip from
`ClipSource.clip`, and ``answers`` / ``candidates`` + ``label`` / ``count``) and names its kind.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from vltasks.datamodules.base import BadSampleError, Collator, Problems, TaskData, candidate_inputs
from vltasks.datamodules.checks import text_problem
from vltasks.datamodules.video import CLIP_OPTIONS, ClipSource
from vltasks.datamodules.vqav2 import VQACollator

KINDS = ("open", "choice", "count")
NUM_CHOICES = 5


class VideoQACollator(VQACollator):
    """The VQA batch with exact targets: 1 on the one answer (when the vocabulary has it)."""

    def targets(self, answers: list[str]) -> dict[int, float]:
        return {self.index[a]: 1.0 for a in answers if a in self.index}


class VideoChoiceCollator(Collator):
    """Clips once per sample, (question, candidate) pairs as [B, 5, L], ``targets`` [B, 1]."""

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.visual(samples)
        batch["answer_inputs"] = candidate_inputs(
            self.processor, [s["question"] for s in samples], [s["candidates"] for s in samples]
        )
        self.copy(
            batch, samples, lists=("sample_id", "question_id", "question", "candidates", "question_type")
        )
        if all(s["label"] is not None for s in samples):
            batch["targets"] = torch.tensor([[s["label"]] for s in samples], dtype=torch.long)
        return batch


class CountCollator(Collator):
    """Clips and questions; ``targets`` [B] the counts (float, for the squared loss)."""

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.visual(samples)
        batch.update(self.processor.text([s["question"] for s in samples]))
        self.copy(batch, samples, lists=("sample_id", "question_id", "question", "question_type"))
        if all(s["count"] is not None for s in samples):
            batch["targets"] = torch.tensor([float(s["count"]) for s in samples])
        return batch


COLLATORS: dict[str, type[Collator]] = {
    "open": VideoQACollator,
    "choice": VideoChoiceCollator,
    "count": CountCollator,
}


class VideoQAData(ClipSource, TaskData):
    """A video QA format: its kind decides the collate, the head arguments and the training text."""

    kind: ClassVar[str] = "open"
    choice_protocol: ClassVar[str] = ""  # the multiple_choice head's protocol (choice kind)
    question_type_groups: ClassVar[dict[str, list[str]]] = {}  # more per-type keys over several types
    # the dataset's question types, in its order, for the per-type accuracy (open kind); a type
    # without questions in the evaluated split is NaN there, as VQAv2's answer types are
    question_types: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[dict[str, Any]] = {
        **CLIP_OPTIONS,
        "min_answer_count": 1,  # open-ended: training answers seen at least this often
        "max_answers": None,  # open-ended: keep only the most frequent (None: all)
    }

    def task_kind(self) -> str:
        return self.kind

    def collate(self, processor: Any, args: dict[str, Any]) -> Collator:
        return COLLATORS[self.task_kind()](processor, args)

    def data_args(self) -> dict[str, Any]:
        kind, train = self.task_kind(), self.samples("train")
        if kind == "choice":
            return {"protocol": self.choice_protocol}
        if kind == "count":
            counts = [s["count"] for s in train if s["count"] is not None]
            return {"mean_count": sum(counts) / len(counts) if counts else None}
        answers = [a for s in train for a in s["answers"] or ()]
        return {
            "answers": answer_vocabulary(answers, self.opts["min_answer_count"], self.opts["max_answers"]),
            "protocol": "exact",
            "answer_types": list(self.question_types),
            **({"answer_type_groups": dict(self.question_type_groups)} if self.question_type_groups else {}),
        }

    def texts(self) -> Iterable[str]:
        train = self.samples("train")
        return [t for s in train for t in (s["question"], *s.get("candidates", ()))]

    # -- what every reader builds its samples with ---------------------------------------------------
    def video_sample(
        self, file: Path, record: str, video: str, problems: Problems, **fields: Any
    ) -> dict[str, Any] | None:
        """The sample of one question on clip ``video`` (None when its clip or text is bad: reported)."""
        problem = text_problem({k: v for k, v in fields.items() if isinstance(v, (str, list))})
        if problem is not None:
            problems.report(file, record, problem)
            return None
        clip, problem = self.clip(video)
        if problem is not None:
            problems.report(clip["video_path"], record, problem)
            return None
        qid = fields["question_id"]
        return {"sample_id": str(qid), "record": record, "video_id": video, **clip, **fields}


def answer_vocabulary(
    answers: Sequence[str], min_count: int = 1, max_answers: int | None = None
) -> list[str]:
    """The training answers seen at least ``min_count`` times, most frequent first (ties by text),
    at most ``max_answers`` of them."""
    counts = Counter(answers)
    keep = sorted((a for a, c in counts.items() if c >= min_count and a), key=lambda a: (-counts[a], a))
    return keep[:max_answers] if max_answers else keep


def nonempty_text(value: Any) -> str | None:
    """The stripped text, or None when the field is not a non-empty string."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def read_table(
    path: Path, columns: Sequence[str], problems: Problems, delimiter: str = ","
) -> Iterator[tuple[str, dict[str, str]]]:
    """(record name "line N", row) of a CSV / TSV whose header names at least ``columns``; a row
    whose field count differs from the header's is reported with its line and left out."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        try:
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in columns if c not in header]
            if missing:
                raise BadSampleError(f"{path}: needs the columns {missing}; the header has {header}")
            reader.fieldnames = header
            for row in reader:
                record = f"line {reader.line_num}"
                if None in row or None in row.values():
                    fields = len(header) + len(row.get(None) or ()) - sum(v is None for v in row.values())
                    problems.report(path, record, f"{fields} fields, the header has {len(header)}")
                    continue
                yield record, row
        except UnicodeDecodeError as e:
            raise BadSampleError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from e
        except csv.Error as e:
            raise BadSampleError(f"{path}: line {reader.line_num}: malformed ({e})") from e
