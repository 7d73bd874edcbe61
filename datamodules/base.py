"""Readers of official formats share one shape: read a split into validated samples (dicts).

Readers know files, never models: the collate receives the backbone's processor from outside.
Bad records raise an error naming the file, the record and the problem; with
``on_bad_sample="skip"`` they are skipped, counted and reported instead. Nothing is dropped silently.
Checks that need the decoded image (it opens; its size is what the annotation says) run when a
sample loads, in the loader's workers: they raise the same named error but cannot be skipped, since
a batch cannot shrink after the split was counted (reading every image up front would cost a pass
over the dataset).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image
from torch.utils.data import Dataset

from vltasks.registry import Registry

log = logging.getLogger(__name__)
ON_BAD_SAMPLE = ("error", "skip")


class BadSampleError(ValueError):
    """A record of a dataset file is unusable; the message names file, record and problem."""


class Problems:
    """Raises on the first bad record, or (skip mode) counts them and keeps a few for the report."""

    def __init__(self, policy: str) -> None:
        if policy not in ON_BAD_SAMPLE:
            raise ValueError(f"data.on_bad_sample must be one of {ON_BAD_SAMPLE}, got {policy!r}")
        self.policy = policy
        self.count = 0
        self.examples: list[str] = []

    def report(self, file: str | Path, record: str, problem: str) -> None:
        message = f"{file}: {record}: {problem}"
        if self.policy == "error":
            raise BadSampleError(message + " (set data.on_bad_sample=skip to skip such records)")
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(message)


def load_json(path: Path) -> Any:
    """JSON with an error that names the file (and the position) instead of a bare traceback."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        with path.open("r", encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise BadSampleError(f"{path}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    except UnicodeDecodeError as e:
        raise BadSampleError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from e


def jsonl_records(path: Path, problems: Problems) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-blank line; a line that is not JSON (or not UTF-8)
    is reported with its number and skipped."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.strip():  # a blank line (e.g. a trailing newline) holds no record
                continue
            try:
                yield n, json.loads(raw.decode("utf-8"))
            except json.JSONDecodeError as e:
                problems.report(path, f"line {n}", f"malformed JSON at column {e.colno}: {e.msg}")
            except UnicodeDecodeError as e:
                problems.report(path, f"line {n}", f"not UTF-8 ({e.reason} at byte {e.start})")


def open_image(path: str, record: str) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError as e:
        raise BadSampleError(f"{path}: {record}: image file not found") from e
    except OSError as e:
        raise BadSampleError(f"{path}: {record}: unreadable image ({e})") from e


class SampleDataset(Dataset):
    """A list of sample dicts; `load` turns one record into what the collate needs."""

    def __init__(
        self, samples: list[dict[str, Any]], load: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> None:
        self.samples = samples
        self.load = load

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.load(self.samples[i])


class TaskData:
    """One task's data in one official format: splits, validation, head arguments, collate."""

    format: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}  # format-specific options and their defaults
    # head_args that only say how the evaluated data is reported (not learned): taken from the data
    # evaluated now when a checkpoint is loaded, instead of the data it was fit on
    eval_head_args: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, root: str, splits: dict[str, str | None], on_bad_sample: str = "error", **options: Any
    ) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise KeyError(
                f"data options {unknown} are not known to format {self.format!r}; "
                f"valid: {', '.join(sorted(self.options)) or '(none)'}"
            )
        if not root:
            raise ValueError(f"data.root is not set for format {self.format!r}")
        self.root = Path(root).expanduser()
        self.splits = splits
        self.on_bad_sample = on_bad_sample
        self.opts = {**self.options, **options}
        self.skipped: dict[str, int] = {}
        self._cache: dict[str, list[dict[str, Any]]] = {}

    def samples(self, stage: str) -> list[dict[str, Any]]:
        """Validated samples of the split configured for a stage (train/val/test/predict)."""
        split = self.splits.get(stage)
        if not split:
            raise ValueError(f"no {stage} split configured for format {self.format!r} (data.{stage}_split)")
        if split not in self._cache:
            problems = Problems(self.on_bad_sample)
            self._cache[split] = self.read(split, problems)
            self.skipped[split] = problems.count
            if problems.count:
                log.warning(
                    "%s split %r: skipped %d bad records, e.g.\n  %s",
                    self.format,
                    split,
                    problems.count,
                    "\n  ".join(problems.examples),
                )
        return self._cache[split]

    # -- implemented by each format --------------------------------------------------------------
    def read(self, split: str, problems: Problems) -> list[dict[str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def head_args(self) -> dict[str, Any]:
        """Arguments the head needs that come from the data (e.g. the answer vocabulary)."""
        return {}

    def texts(self) -> Iterable[str]:  # pragma: no cover
        """Training text, for tiny backbones that train their tokenizer on it."""
        raise NotImplementedError

    def dataset(
        self, samples: list[dict[str, Any]], head_args: dict[str, Any]
    ) -> Dataset:  # pragma: no cover
        raise NotImplementedError

    def collate(
        self, processor: Any, head_args: dict[str, Any]
    ) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
        raise NotImplementedError  # pragma: no cover


READERS: Registry[type[TaskData]] = Registry("data format")
