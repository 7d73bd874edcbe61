"""ImageTextRetrieval and VideoTextRetrieval: ranks from embeddings gathered over the whole set."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.retrieval import (
    BlockFn,
    gt_ranks,
    map_from_ranks,
    recall_from_ranks,
    video_metrics_from_ranks,
    video_ranks,
)
from vltasks.metrics.utilities import ids_to_tensor, keep_indices, optional_ids

Ids = Sequence[int | str] | Tensor | None
# (item block, text block, number of items, item index of each caption, chunk) -> two rank tensors
RankFn = Callable[[BlockFn, BlockFn, int, Tensor, int], tuple[Tensor, Tensor]]


class _EmbeddingRetrieval(SampleMetric):
    """Gallery items (images or videos) with ids, and captions naming their item's id.

    Items and captions may come in separate batches (as in ALBEF's evaluation); items are
    de-duplicated by id (the `ids` state), captions by their own optional ids. Scores are dot
    products (cosine when `normalize=True`), computed in blocks of `chunk` rows in `compute`.
    """

    item = "image"  # the gallery's name in error messages

    def __init__(self, ks: Sequence[int], normalize: bool, chunk: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ks, self.normalize, self.chunk = tuple(ks), normalize, chunk
        self._add_sample_state("item_embeds", torch.float32)
        self._add_sample_state("text_embeds", torch.float32)
        self._add_sample_state("text_item_ids", torch.long)
        self._add_sample_state("text_ids", torch.long)

    def _add(
        self,
        item_embeds: Tensor | None,
        item_ids: Ids,
        text_embeds: Tensor | None,
        text_item_ids: Ids,
        text_ids: Ids,
    ) -> None:
        if item_embeds is not None:
            if item_ids is None:
                raise ValueError(
                    f"{self.item}_ids are required with {self.item}_embeds (captions refer to them)"
                )
            self._append(item_ids, item_embeds=item_embeds.detach().float())
        if text_embeds is not None:
            if text_item_ids is None:
                raise ValueError(
                    f"text_{self.item}_ids (the {self.item} id of each caption) are required with text_embeds"
                )
            n = text_embeds.shape[0]
            item_of_text = ids_to_tensor(text_item_ids, device=self.device)
            if item_of_text.numel() != n:
                raise ValueError(f"got {item_of_text.numel()} text_{self.item}_ids for {n} captions")
            self._push("text_embeds", text_embeds)
            self._push("text_item_ids", item_of_text)
            self._push("text_ids", optional_ids(text_ids, n, device=self.device))

    def _ranks(self, rank_fn: RankFn) -> tuple[Tensor, Tensor, Tensor, int]:
        """`rank_fn`'s two rank tensors, the item index of each caption and the number of items."""
        (items,) = self._gathered("item_embeds")
        item_ids = self._flat("ids")[keep_indices(self._flat("ids"))]
        text_ids = self._flat("text_ids")
        if items.numel() == 0 or text_ids.numel() == 0:
            name = type(self).__name__
            raise ValueError(f"{name} needs both {self.item} and text embeddings before compute()")
        keep = keep_indices(text_ids)
        texts = self._flat("text_embeds").reshape(text_ids.numel(), -1)[keep]
        text_item_ids = self._flat("text_item_ids")[keep]
        items = items.reshape(item_ids.numel(), -1)
        if self.normalize:
            items = torch.nn.functional.normalize(items, dim=-1)
            texts = torch.nn.functional.normalize(texts, dim=-1)
        sorted_ids, perm = torch.sort(item_ids)
        pos = torch.searchsorted(sorted_ids, text_item_ids).clamp(max=max(len(sorted_ids) - 1, 0))
        if sorted_ids.numel() == 0 or not bool((sorted_ids[pos] == text_item_ids).all()):
            raise ValueError(
                f"some captions refer to {self.item} ids that were never given with {self.item}_embeds"
            )
        text_to_item, n = perm[pos], items.shape[0]
        first, second = rank_fn(
            lambda rows: items[rows] @ texts.T,
            lambda cols: texts[cols] @ items.T,
            n,
            text_to_item,
            self.chunk,
        )
        return first, second, text_to_item, n


class ImageTextRetrieval(_EmbeddingRetrieval):
    """Both-way retrieval over all images and captions seen (ALBEF/BLIP/LAVIS keys, as fractions).

    `update(image_embeds=None, image_ids=None, text_embeds=None, text_image_ids=None, text_ids=None)`:
    images and captions may come in separate batches (as in ALBEF's evaluation); each caption names
    its image's id. Images are de-duplicated by id, captions by `text_ids` when given. Scores are
    dot products (cosine when `normalize=True`), computed in blocks of `chunk` rows in `compute`.
    Returns recall keys txt_r{k}, img_r{k}, txt_r_mean, img_r_mean, r_mean, plus txt_map, img_map,
    map when `with_map=True`. For ITM re-ranking see `RetrievalCache` and `rerank_recalls`.
    """

    def __init__(
        self,
        ks: Sequence[int] = (1, 5, 10),
        normalize: bool = True,
        with_map: bool = False,
        chunk: int = 1024,
        **kwargs,
    ) -> None:
        super().__init__(ks, normalize, chunk, **kwargs)
        self.with_map = with_map

    def update(
        self,
        image_embeds: Tensor | None = None,
        image_ids: Ids = None,
        text_embeds: Tensor | None = None,
        text_image_ids: Ids = None,
        text_ids: Ids = None,
    ) -> None:
        self._add(image_embeds, image_ids, text_embeds, text_image_ids, text_ids)

    def compute(self) -> dict[str, Tensor]:
        i2t, t2i, text_to_image, n_images = self._ranks(gt_ranks)
        out = recall_from_ranks(i2t, t2i, text_to_image, n_images, self.ks)
        if self.with_map:
            out.update(map_from_ranks(i2t, t2i, text_to_image, n_images))
        return out


class VideoTextRetrieval(_EmbeddingRetrieval):
    """Video-text retrieval as CLIP4Clip reports it: v2t/t2v R@k (fractions), MdR and MnR (1-based).

    `update(video_embeds=None, video_ids=None, text_embeds=None, text_video_ids=None, text_ids=None)`,
    as `ImageTextRetrieval`. Keys v2t_r{k}, v2t_mdr, v2t_mnr, t2v_r{k}, t2v_mdr, t2v_mnr. With several
    sentences per video (MSVD, multi-sentence MSR-VTT) each sentence is a t2v query and v2t ranks the
    videos' sentence groups, each scored by its best sentence. Ties: a stable descending sort (the
    lower video / first-seen index ranks first). Every video needs at least one sentence.
    """

    higher_is_better = None  # mixed: MdR and MnR are lower-is-better
    plot_upper_bound = None

    item = "video"

    def __init__(
        self, ks: Sequence[int] = (1, 5, 10), normalize: bool = True, chunk: int = 1024, **kwargs
    ) -> None:
        super().__init__(ks, normalize, chunk, **kwargs)

    def update(
        self,
        video_embeds: Tensor | None = None,
        video_ids: Ids = None,
        text_embeds: Tensor | None = None,
        text_video_ids: Ids = None,
        text_ids: Ids = None,
    ) -> None:
        self._add(video_embeds, video_ids, text_embeds, text_video_ids, text_ids)

    def compute(self) -> dict[str, Tensor]:
        v2t, t2v, _, _ = self._ranks(video_ranks)
        return video_metrics_from_ranks(v2t, t2v, self.ks)
