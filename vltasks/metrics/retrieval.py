"""ImageTextRetrieval: recall (and mAP) from image and text embeddings gathered over the whole set."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

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
        self._add_sample_state("image_embeds", torch.float32)
        self._add_sample_state("text_embeds", torch.float32)
        self._add_sample_state("text_image_ids", torch.long)
        self._add_sample_state("text_ids", torch.long)

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
                raise ValueError(
                    "text_image_ids (the image id of each caption) are required with text_embeds"
                )
            n = text_embeds.shape[0]
            image_of_text = ids_to_tensor(text_image_ids, device=self.device)
            if image_of_text.numel() != n:
                raise ValueError(f"got {image_of_text.numel()} text_image_ids for {n} captions")
            self._push("text_embeds", text_embeds)
            self._push("text_image_ids", image_of_text)
            self._push("text_ids", optional_ids(text_ids, n, device=self.device))

    def compute(self) -> dict[str, Tensor]:
        (images,) = self._gathered("image_embeds")
        image_ids = self._flat("ids")[keep_indices(self._flat("ids"))]
        text_ids = self._flat("text_ids")
        if images.numel() == 0 or text_ids.numel() == 0:
            raise ValueError("ImageTextRetrieval needs both image and text embeddings before compute()")
        keep = keep_indices(text_ids)
        texts = self._flat("text_embeds").reshape(text_ids.numel(), -1)[keep]
        text_image_ids = self._flat("text_image_ids")[keep]
        images = images.reshape(image_ids.numel(), -1)
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
