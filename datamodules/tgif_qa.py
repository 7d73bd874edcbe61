"""TGIF-QA (Jang et al. 2017) in its release's layout: four tasks on animated GIFs.

    <root>/Train_<task>_question.csv, Test_<task>_question.csv   tab-separated, a header line
        frameqa:            gif_name question answer type vid_id key [description]
        action, transition: gif_name question a1 a2 a3 a4 a5 answer vid_id key
        count:              gif_name question answer vid_id key
    <root>/gifs/<gif_name>.gif                                     (TGIF's GIFs; an .mp4 also does)

``data.options.task`` picks the task: ``frameqa`` is open-ended (``vqa`` head; ``type`` 0 object,
1 number, 2 color, 3 location), ``action`` and ``transition`` choose among a1..a5 (``answer`` the
0-based position; ``multiple_choice`` head), ``count`` regresses the number (``count`` head). The
count files write the count 1 as 0 (no row says 1); the official loader reads an answer below 1
as 1, and so does this reader. ``vid_id`` (``FRAMEQA123``, ``ACTION4``...) names a question and
its prediction. Splits are ``train`` and ``test`` (the release has no validation split). Frames
and features are keyed by ``gif_name``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vltasks.datamodules.base import READERS, BadSampleError, Problems
from vltasks.datamodules.video_qa import NUM_CHOICES, VideoQAData, nonempty_text, read_table

TASKS = ("frameqa", "action", "transition", "count")
KIND = {"frameqa": "open", "action": "choice", "transition": "choice", "count": "count"}
FRAMEQA_TYPES = ("object", "number", "color", "location")
CHOICES = tuple(f"a{k}" for k in range(1, NUM_CHOICES + 1))
COLUMNS = {
    "frameqa": ("gif_name", "question", "answer", "type", "vid_id"),
    "action": ("gif_name", "question", *CHOICES, "answer", "vid_id"),
    "transition": ("gif_name", "question", *CHOICES, "answer", "vid_id"),
    "count": ("gif_name", "question", "answer", "vid_id"),
}
MAX_COUNT = 10


def question_file(root: Path, split: str, task: str) -> Path:
    """``train`` -> Train_<task>_question.csv (the release's capitalised split names)."""
    return root / f"{split[:1].upper()}{split[1:].lower()}_{task}_question.csv"


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


@READERS.register("tgif_qa")
class TGIFQAData(VideoQAData):
    format = "tgif_qa"
    video_dir_default = "gifs"
    question_types = FRAMEQA_TYPES
    choice_protocol = "tgif"
    options = {**VideoQAData.options, "task": "frameqa"}

    def task_kind(self) -> str:
        task = self.opts["task"]
        if task not in TASKS:
            raise ValueError(f"data.options.task must be one of {TASKS} for format 'tgif_qa', got {task!r}")
        return KIND[task]

    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:
        kind, task = self.task_kind(), self.opts["task"]
        if split.lower() not in ("train", "test"):
            raise BadSampleError(f"{self.root}: TGIF-QA splits are 'train' and 'test', got {split!r}")
        path = question_file(self.root, split, task)
        samples, seen = [], set()
        for line, row in read_table(path, COLUMNS[task], problems, delimiter="\t"):
            vid_id, gif = row["vid_id"].strip(), row["gif_name"].strip()
            record = f"vid_id={vid_id} ({line}, gif_name={gif})"
            fields, problem = self._fields(kind, row)
            if not vid_id or not gif:
                problem = "empty 'vid_id' or 'gif_name'"
            elif vid_id in seen:
                problem = "duplicate vid_id"
            if problem is not None:
                problems.report(path, record, problem)
                continue
            sample = self.video_sample(path, record, gif, problems, question_id=vid_id, **fields)
            if sample is not None:
                seen.add(vid_id)
                samples.append(sample)
        return samples

    def _fields(self, kind: str, row: dict[str, str]) -> tuple[dict[str, Any], str | None]:
        """The sample fields of one row of the task's file, or the row's problem."""
        question, answer = nonempty_text(row["question"]), nonempty_text(row["answer"])
        if question is None or answer is None:
            return {}, "empty 'question' or 'answer'"
        if kind == "open":
            kind_code = _int(row["type"])
            if kind_code is None or not 0 <= kind_code < len(FRAMEQA_TYPES):
                return {}, f"'type' must be 0..{len(FRAMEQA_TYPES) - 1}, got {row['type']!r}"
            t = FRAMEQA_TYPES[kind_code]
            return {"question": question, "answers": [answer], "answer_type": t, "question_type": t}, None
        number = _int(answer)
        if kind == "count":
            if number is None or not 0 <= number <= MAX_COUNT:
                return {}, f"'answer' must be a count 0..{MAX_COUNT}, got {answer!r}"
            # the release writes 1 as 0; the official loader reads max(answer, 1)
            return {"question": question, "count": max(number, 1), "question_type": "count"}, None
        candidates = [nonempty_text(row[c]) for c in CHOICES]
        if any(c is None for c in candidates):
            return {}, f"every candidate {list(CHOICES)} needs a text"
        if number is None or not 0 <= number < NUM_CHOICES:
            return {}, f"'answer' must be a candidate position 0..{NUM_CHOICES - 1}, got {answer!r}"
        fields = {"question": question, "candidates": candidates, "label": number}
        return {**fields, "answer": candidates[number], "question_type": self.opts["task"]}, None
