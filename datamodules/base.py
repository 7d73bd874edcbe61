"""Readers of official formats share one shape: read a split into validated samples (dicts).

Readers know files, never models: the collate receives the backbone's processor from outside.
Bad records raise an error naming the file, the record and the problem; with
``on_bad_sample="skip"`` they are skipped, counted and reported instead. Nothing is dropped silently.
Checks that need the decoded image (it opens; its size is what the annotation says) run when a
sample loads, in the loader's workers (datamodules/media.py): the same named error, or under
``skip`` the sample is left out of its batch and counted by the DataModule.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch.utils.data import Dataset
from vltasks.datamodules.media import DEFAULT_MAX_PIXELS, BadSampleError, ImageLoader, SampleDataset
from vltasks.datamodules.video import clip_inputs

from vltasks.registry import Registry

log = logging.getLogger(__name__)
ON_BAD_SAMPLE = ("error", "skip")


def candidate_inputs(processor: Any, contexts: list[str], candidates: list[list[str]]) -> dict[str, Any]:
    """Multiple choice: (context, candidate) pairs tokenized together, shaped [B, K, L], K
    candidates per sample (``contexts[b]`` pairs with each of ``candidates[b]``)."""
    k = len(candidates[0])
    if any(len(c) != k for c in candidates):
        raise ValueError(
            f"every sample needs the same number of candidates, got {[len(c) for c in candidates]}"
        )
    enc = processor.pairs(
        [c for c, cands in zip(contexts, candidates) for _ in cands], [x for c in candidates for x in c]
    )
    return {key: v.view(len(contexts), k, -1) for key, v in enc.items()}


class Problems:
    """Raises on the first bad record, or (skip mode) counts them and keeps a few for the report."""

    def __init__(self, policy: str) -> None:
        if policy not in ON_BAD_SAMPLE:
            raise ValueError(f"data.on_bad_sample must be one of {ON_BAD_SAMPLE}, got {policy!r}")
        self.policy = policy
        self.count = 0
        self.examples: list[str] = []

    def report(self, file: str | Path, record: str, problem: str) -> None:
        # a lone surrogate in a record name must not make the report itself unprintable
        message = f"{file}: {record}: {problem}".encode("utf-8", "backslashreplace").decode("utf-8")
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


class _PlainUnpickler(pickle.Unpickler):
    """Refuses every global lookup, so only dicts, lists, tuples, str, bytes, numbers come out."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data is allowed")


def load_plain_pickle(path: Path) -> Any:
    """Unpickle a data file without running code from it; errors name the file."""
    with path.open("rb") as f:  # an unreadable file says so itself
        data = f.read()
    try:
        return _PlainUnpickler(io.BytesIO(data), encoding="utf-8").load()
    except UnicodeDecodeError as e:  # a Python 2 str is decoded as UTF-8, as refer's files are
        raise BadSampleError(
            f"{path}: a text in the pickle is not UTF-8 ({e.reason} at byte {e.start} of {e.object[:40]!r})"
        ) from e
    except Exception as e:  # a corrupt pickle fails in many ways (AttributeError, TypeError, ...)
        raise BadSampleError(f"{path}: not a plain-data pickle ({type(e).__name__}: {e})") from e


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


class Collator:
    """Makes a batch (vltasks/batch.py) from loaded samples with the backbone's processor; ``args``
    are what the head asks of it (``Head.collate_args``: a vocabulary, a prompt)."""

    def __init__(self, processor: Any, args: dict[str, Any] | None = None) -> None:
        self.processor = processor

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def visual(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        """What the backbone sees of each sample, and what names it: ``pixel_values`` (+ the image
        paths), or a clip's ``video`` / ``video_features`` (+ the video ids and paths)."""
        if "image" in samples[0]:
            batch = self.processor.images([s["image"] for s in samples])
            return self.copy(batch, samples, lists=("image_path",))
        names = tuple(k for k in ("video_id", "video_path") if k in samples[0])
        return self.copy(clip_inputs(self.processor, samples), samples, lists=names)

    @staticmethod
    def copy(
        batch: dict[str, Any],
        samples: list[dict[str, Any]],
        lists: tuple[str, ...] = (),
        ids: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Per-sample bookkeeping into the batch: ``lists`` as lists, integer ``ids`` as int64 tensors."""
        for key in lists:
            batch[key] = [s[key] for s in samples]
        for key in ids:
            batch[key] = torch.tensor([s[key] for s in samples], dtype=torch.long)
        return batch


class TaskData:
    """One task's data in one official format: splits, validation, head arguments, collate."""

    format: ClassVar[str] = ""
    options: ClassVar[dict[str, Any]] = {}  # format-specific options and their defaults
    # data_args that only say how the evaluated data is reported (not learned): taken from the data
    # evaluated now when a checkpoint is loaded, instead of the data it was fit on
    eval_data_args: ClassVar[tuple[str, ...]] = ()
    collator: ClassVar[type[Collator]] = Collator  # each format's batch maker
    needs: ClassVar[frozenset[str]] = frozenset()  # backbone capabilities its samples need ("video")

    def __init__(
        self,
        root: str,
        splits: dict[str, str | None],
        on_bad_sample: str = "error",
        max_image_pixels: int | None = DEFAULT_MAX_PIXELS,
        **options: Any,
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
        self.max_image_pixels = max_image_pixels
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

    def data_args(self) -> dict[str, Any]:
        """What the head needs that only the data can tell (the answer vocabulary, split names)."""
        return {}

    def texts(self) -> Iterable[str]:  # pragma: no cover
        """Training text, for tiny backbones that train their tokenizer on it."""
        raise NotImplementedError

    def dataset(self, samples: list[dict[str, Any]], train: bool = False) -> Dataset:
        """Samples whose image is decoded and checked when the loader asks for them (``train``:
        for readers that sample differently in training, such as a clip's frames)."""
        return SampleDataset(samples, ImageLoader(self.max_image_pixels))

    def collate(self, processor: Any, args: dict[str, Any]) -> Collator:
        """The batch maker (vltasks/batch.py); ``args`` is what the head asks of it (``collate_args``)."""
        return self.collator(processor, args)


READERS: Registry[type[TaskData]] = Registry("data format")
