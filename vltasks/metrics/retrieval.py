"""ImageTextRetrieval: recall (and mAP) from image and text embeddings gathered over the whole set."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics.utilities import dim_zero_cat

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.retrieval import gt_ranks, map_from_ranks, recall_from_ranks
from vltasks.metrics.utilities import ids_to_tensor, keep_indices, optional_ids


class ImageTextRetrieval(SampleMetric):
    """Both-way retrieval over all images and captions seen (ALBEF/BLIP/LAVIS keys, as fractions).

    `update(image_embeds=None, image_ids=None, text_embeds=None, text_image_ids=None, text_ids=None)`:
    images and captions may come in separate batches (as in ALBEF's evaluation); each caption names
    its image's id. Images are de-duplicated by id, captions by `text_ids` when given. Scores are
    dot products (cosine when `normalize=True`), computed in blocks of `chunk` rows in `compute`.
    Returns recall keys txt_r{k}, img_r{k}, txt_r_mean, img_r_mean, r_mean, plus txt_map, img_map,
    map when `with_map=True`. For ITM re-ranking use the functional form on the final score matrix.
    """

    def __init__(
        self,
        ks: Sequence[int] = (1, 5, 10),
        normalize: bool = True,
        with_map: bool = False,
        chunk: int = 1024,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.ks, self.normalize, self.with_map, self.chunk = tuple(ks), normalize, with_map, chunk
        for name in ("image_embeds", "text_embeds", "text_image_ids", "text_ids"):
            self._add_sample_state(name)

    def update(
        self,
        image_embeds: Tensor | None = None,
        image_ids: Sequence[int | str] | Tensor | None = None,
        text_embeds: Tensor | None = None,
        text_image_ids: Sequence[int | str] | Tensor | None = None,
        text_ids: Sequence[int | str] | Tensor | None = None,
    ) -> None:
        if image_embeds is not None:
            if image_ids is None:
                raise ValueError("image_ids are required with image_embeds (captions refer to them)")
            self._append(image_ids, image_embeds=image_embeds.detach().float())
        if text_embeds is not None:
            if text_image_ids is None:
                raise ValueError("text_image_ids (the image id of each caption) are required with text_embeds")
            n = text_embeds.shape[0]
            self.text_embeds.append(text_embeds.detach().float())
            self.text_image_ids.append(ids_to_tensor(text_image_ids, device=self.device))
            self.text_ids.append(optional_ids(text_ids, n, device=self.device))
            if self.text_image_ids[-1].numel() != n:
                raise ValueError(f"got {self.text_image_ids[-1].numel()} text_image_ids for {n} captions")

    def compute(self) -> dict[str, Tensor]:
        if _empty(self.ids) or _empty(self.text_ids):
            raise ValueError("ImageTextRetrieval needs both image and text embeddings before compute()")
        all_ids = dim_zero_cat(self.ids)
        keep = keep_indices(all_ids)
        images, image_ids = dim_zero_cat(self.image_embeds)[keep], all_ids[keep]
        keep = keep_indices(dim_zero_cat(self.text_ids))
        texts = dim_zero_cat(self.text_embeds)[keep]
        text_image_ids = dim_zero_cat(self.text_image_ids)[keep]
        if self.normalize:
            images = torch.nn.functional.normalize(images, dim=-1)
            texts = torch.nn.functional.normalize(texts, dim=-1)
        sorted_ids, perm = torch.sort(image_ids)
        pos = torch.searchsorted(sorted_ids, text_image_ids).clamp(max=max(len(sorted_ids) - 1, 0))
        if sorted_ids.numel() == 0 or not bool((sorted_ids[pos] == text_image_ids).all()):
            raise ValueError("some captions refer to image ids that were never given with image_embeds")
        text_to_image = perm[pos]
        i2t, t2i = gt_ranks(
            lambda rows: images[rows] @ texts.T,
            lambda cols: texts[cols] @ images.T,
            images.shape[0],
            text_to_image,
            self.chunk,
        )
        out = recall_from_ranks(i2t, t2i, text_to_image, images.shape[0], self.ks)
        if self.with_map:
            out.update(map_from_ranks(i2t, t2i, text_to_image, images.shape[0]))
        return out


def _empty(state: list[Tensor] | Tensor) -> bool:
    return isinstance(state, list) and len(state) == 0
