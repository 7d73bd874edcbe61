"""DenseCapMAP: DenseCap's dense captioning mAP (Visual Genome) as a torchmetrics Metric."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.densecap import Meteor, densecap_ap, image_records
from vltasks.metrics.utilities import keep_indices


class DenseCapMAP(SampleMetric):
    """{"map", "det_map"} exactly as densecap/eval/eval_utils.lua (see the functional module).

    `update(predictions, ground_truth, ids=None)`: per image, {"boxes", "scores", "captions"} and
    {"boxes", "captions"}; `ids` are image ids. Everything that is per image (GT merging, assignment,
    METEOR of the candidate against its GT's captions) happens in update, so the states are plain
    per-detection numbers and the ranking over all images happens once in compute. `meteor` is a
    callable (preds, refs) -> per-sentence scores; by default the captioning package's METEOR (Java).
    """

    def __init__(
        self,
        meteor: Meteor | None = None,
        box_format: str = "xyxy",
        zero_overlap_marks_last_gt: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.meteor, self.box_format = meteor, box_format
        self.zero_overlap_marks_last_gt = zero_overlap_marks_last_gt
        for name in ("npos", "n_det", "det_ok"):
            self._add_sample_state(name, torch.long)
        for name in ("det_scores", "det_ov", "det_meteor"):
            self._add_sample_state(name)

    def update(
        self,
        predictions: Sequence[dict],
        ground_truth: Sequence[dict],
        ids: Sequence[int | str] | Tensor | None = None,
    ) -> None:
        r = image_records(
            predictions, ground_truth, self.meteor, self.box_format, self.zero_overlap_marks_last_gt
        )
        self._append(ids, npos=r["npos"], n_det=r["n_det"])
        for key in ("scores", "ov", "ok", "meteor"):
            self._push(f"det_{key}", r[key])

    def compute(self) -> dict[str, Tensor]:
        ids = self._flat("ids")
        kept_images = torch.zeros(ids.numel(), dtype=torch.bool, device=ids.device)
        kept_images[keep_indices(ids)] = True
        keep = torch.repeat_interleave(kept_images, self._flat("n_det"))  # images and detections: one order
        return densecap_ap(
            self._flat("det_scores")[keep],
            self._flat("det_ov")[keep],
            self._flat("det_ok")[keep].bool(),
            self._flat("det_meteor")[keep],
            int(self._flat("npos")[kept_images].sum()),
        )
