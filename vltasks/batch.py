"""The batch contract between the readers' collates and the heads, in one place.

A batch is a dict that a reader's collate builds from samples (datamodules/):

- ``sample_id``: ``list[str]``, one per sample; it names predictions and de-duplicates metrics.
- Backbone inputs, made by the collate with the backbone's processor (heads never tokenize):
  ``pixel_values`` [B, 3, H, W] (+ ``pixel_mask``), or for clips ``video`` [B, T, 3, H, W] or
  ``video_features`` [B, T, F] (+ ``frame_mask`` [B, T] when clips differ in length), and one text
  per sample as ``input_ids`` / ``attention_mask`` / ``token_type_ids`` [B, L].
- Candidates (multiple choice): ``<group>_inputs``, a dict of the same text keys shaped
  [B, K, L], or [B, A, K, L] when each of A contexts has K candidates (VCR's test rationales).
  The candidates of a sample are a dimension of the tensor, never a reshape the head must guess.
- ``targets``: present if and only if the batch is labelled (``is_labelled``); the collate sets it
  only when every sample of the batch carries ground truth. Its form is the head's: class indices,
  soft scores, boxes, token labels (-100 where not scored), or one ``Instances`` per sample for set
  prediction (boxes with captions, spans with saliency), as DETR and detectron2 keep targets.
- Everything else is per-sample bookkeeping named by the dataset's own fields (``question_id``,
  ``image_path``, ``captions``...), read by ``predict``, the metrics and the example images.

Images and texts that fail to load are not in the batch: under ``data.on_bad_sample=skip`` the
collate leaves them out and lists them as ``failed`` (sample id, message), which the DataModule
reports and removes before the batch reaches a head.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
# what a sample is seen through: an image, a clip's frames, or a clip's pre-extracted features
VISUAL_KEYS = ("pixel_values", "pixel_mask", "video", "video_features", "frame_mask")
FAILED = "failed"


def is_labelled(batch: Mapping[str, Any]) -> bool:
    """The one rule for "does this batch carry ground truth?": it has ``targets``."""
    return batch.get("targets") is not None


def batch_size(batch: Mapping[str, Any]) -> int:
    return len(batch["sample_id"])


def visual_input(batch: Mapping[str, Any]) -> Tensor:
    """What the backbone sees of each sample: ``pixel_values`` [B, 3, H, W], or a clip's frames
    ``video`` [B, T, 3, H, W], or its features ``video_features`` [B, T, F]."""
    for key in ("pixel_values", "video", "video_features"):
        if batch.get(key) is not None:
            return batch[key]
    raise KeyError("the batch has no pixel_values, video or video_features")


class Instances:
    """One sample's set of targets (or predictions): fields that all have one row per instance.

    ``Instances(boxes=Tensor[N, 4], captions=[...])``; tensors move with ``.to(device)``, which
    Lightning calls when it moves a batch, lists ride along. An empty set is ``len() == 0``.
    """

    def __init__(self, **fields: Any) -> None:
        self._fields: dict[str, Any] = {}
        for name, value in fields.items():
            self.set(name, value)

    def set(self, name: str, value: Any) -> None:
        n = len(value)
        if self._fields and n != len(self):
            raise ValueError(f"Instances: field {name!r} has {n} rows, the others {len(self)}")
        self._fields[name] = value

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("_fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(f"Instances has no field {name!r} (fields: {sorted(fields)})")

    def __len__(self) -> int:
        return len(next(iter(self._fields.values()))) if self._fields else 0

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def to(self, *args: Any, **kwargs: Any) -> Instances:
        return Instances(
            **{k: v.to(*args, **kwargs) if isinstance(v, Tensor) else v for k, v in self._fields.items()}
        )

    def __repr__(self) -> str:
        shapes = {k: tuple(v.shape) if isinstance(v, Tensor) else len(v) for k, v in self._fields.items()}
        return f"Instances({len(self)}: {shapes})"


_PLAIN = (str, bytes, int, float, bool, type(None))


def move_batch(batch: Any, device: torch.device | str) -> Any:
    """The batch with every tensor on ``device``: what Lightning's ``move_data_to_device`` does, in
    the shapes batches have (dicts, lists, tuples, tensors, objects with ``.to`` such as
    `Instances`; other containers take Lightning's walk), without visiting each string of a list one by one.

    Lightning's generic walk checks every leaf for being a dataclass or a namedtuple; a VQA batch has
    ~1000 leaves (answers, ids), which cost 3% of a tiny model's training step (benchmarks/
    bench_train_step.py). Tensors go with ``non_blocking`` except to the CPU, as Lightning does."""
    if isinstance(batch, Tensor):
        dev = torch.device(device)
        return batch.to(dev, non_blocking=dev.type not in ("cpu", "mps"))
    if isinstance(batch, _PLAIN):
        return batch
    if type(batch) is dict:
        return {k: move_batch(v, device) for k, v in batch.items()}
    if type(batch) in (list, tuple):
        if all(isinstance(x, _PLAIN) for x in batch):
            return batch
        return type(batch)(move_batch(x, device) for x in batch)
    if callable(getattr(batch, "to", None)):
        return batch.to(device)
    from lightning.fabric.utilities.apply_func import move_data_to_device  # anything else: its walk

    return move_data_to_device(batch, device)


def flatten_candidates(inputs: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], torch.Size]:
    """[B, ..., L] candidate text tensors -> rows [R, L], and the leading shape [B, ...] to restore."""
    lead = next(iter(inputs.values())).shape[:-1]
    return {k: v.reshape(-1, v.shape[-1]) for k, v in inputs.items()}, lead
