"""Two-stage retrieval evaluation (ALBEF/BLIP): ITC similarity -> top-k per query -> ITM re-scoring.

`RetrievalCache` keeps what the evaluation needs per image (id, ITC embedding, vision tokens) and
per caption (id, image id, ITC embedding, token ids); `rerank_recalls` gathers it from every
process, scores the union of both directions' top-k pairs with a caller-given ITM scorer and returns
the recalls. Identical on any number of processes: items are de-duplicated by id and sorted by id,
pairs are cut into fixed chunks (chunk c is scored by rank c mod W) and summed across ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from vltasks.metrics.base import SampleMetric
from vltasks.metrics.functional.retrieval import gt_ranks, recall_from_ranks
from vltasks.metrics.utilities import ids_to_tensor, keep_indices

# (image indices [b], text indices [b]) -> ITM scores [b]; indices into the sorted, de-duplicated sets
PairScorer = Callable[[Tensor, Tensor], Tensor]


class RetrievalCache(SampleMetric):
    """Per-image and per-caption evaluation states; `compute` returns what `rerank_recalls` set.

    Not synced on compute: the head gathers the states once, in `on_eval_epoch_end`, to re-rank.
    """

    def __init__(self, cache_dtype: torch.dtype = torch.float32, **kwargs: Any) -> None:
        super().__init__(sync_on_compute=False, **kwargs)
        self._add_sample_state("image_embeds", torch.float32)
        self._add_sample_state("image_tokens", cache_dtype)
        for name in ("text_ids", "text_image_ids", "text_token_ids", "text_lengths"):
            self._add_sample_state(name, torch.long)
        self._add_sample_state("text_embeds", torch.float32)
        self._add_sample_state("token_shape", torch.long)  # [P, Dv] once per update
        self.result: dict[str, Tensor] | None = None

    def update(
        self,
        image_ids: Sequence[int] | Tensor,
        image_embeds: Tensor,
        image_tokens: Tensor,
        text_ids: Sequence[int] | Tensor,
        text_image_ids: Sequence[int] | Tensor,
        text_embeds: Tensor,
        input_ids: Tensor,
        attention_mask: Tensor,
    ) -> None:
        self._append(image_ids, image_embeds=image_embeds.float(), image_tokens=image_tokens)
        self._push("token_shape", torch.tensor(image_tokens.shape[1:]))
        real = attention_mask.bool()
        self._push("text_ids", ids_to_tensor(text_ids, device=self.device))
        self._push("text_image_ids", ids_to_tensor(text_image_ids, device=self.device))
        self._push("text_embeds", text_embeds.float())
        self._push("text_token_ids", input_ids[real])  # row-major: each caption's real tokens in order
        self._push("text_lengths", real.sum(1))

    def compute(self) -> dict[str, Tensor]:
        if self.result is None:
            raise RuntimeError("RetrievalCache: the head's on_eval_epoch_end must re-rank before compute()")
        return self.result

    def reset(self) -> None:
        super().reset()
        self.result = None

    def collect(self) -> dict[str, Any]:
        """De-duplicated states sorted by id (call inside `sync_context` to see every process)."""
        ids = self._flat("ids")
        keep = keep_indices(ids)
        img_ids, order = torch.sort(ids[keep])
        n = ids.numel()
        emb = self._flat("image_embeds").reshape(n, -1)[keep][order]
        shape = self._flat("token_shape").reshape(-1, 2)[:1].flatten().tolist() if n else [0, 0]
        tok = self._flat("image_tokens").reshape(n, *shape)[keep][order]
        tids = self._flat("text_ids")
        lengths = self._flat("text_lengths")
        starts = torch.cumsum(lengths, 0) - lengths
        tkeep = keep_indices(tids)
        text_ids, torder = torch.sort(tids[tkeep])
        sel = tkeep[torder]
        tembs = self._flat("text_embeds").reshape(tids.numel(), -1)[sel]
        timg = self._flat("text_image_ids")[sel]
        pos = torch.searchsorted(img_ids, timg).clamp(max=max(img_ids.numel() - 1, 0))
        if img_ids.numel() == 0 or not bool((img_ids[pos] == timg).all()):
            raise ValueError("retrieval: some captions name image ids that were never evaluated")
        return {
            "image_ids": img_ids,
            "image_embeds": emb,
            "image_tokens": tok,
            "text_ids": text_ids,
            "text_embeds": tembs,
            "text_to_image": pos,
            "token_ids": self._flat("text_token_ids"),
            "starts": starts[sel],
            "lengths": lengths[sel],
        }


def _topk(query: Tensor, gallery: Tensor, k: int, chunk: int) -> Tensor:
    """Indices [n, k] of the k most similar gallery rows per query row, in blocks of rows."""
    if query.shape[0] == 0:
        return torch.zeros(0, k, dtype=torch.long, device=query.device)
    return torch.cat([(q @ gallery.T).topk(k, dim=1).indices for q in query.split(chunk)])


def _candidate_ranks(cands: Tensor, scores: Tensor, target: Tensor, fallback: Tensor, k: int) -> Tensor:
    """Rank of `target` among each row's re-scored candidates (ties by index), else max(fallback, k)."""
    match = cands == target[:, None]
    has = match.any(1)
    s = scores.gather(1, match.float().argmax(1, keepdim=True))
    rank = (scores > s).sum(1) + ((scores == s) & (cands < target[:, None])).sum(1)
    return torch.where(has, rank, fallback.clamp(min=k))


def rerank_recalls(
    items: dict[str, Any], score_pairs: PairScorer, k: int, chunk: int = 128, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, Tensor]:
    """ITC recalls (``itc_*``) and ITM-re-ranked recalls over the top-k of both directions."""
    img = F.normalize(items["image_embeds"].float(), dim=-1)
    txt = F.normalize(items["text_embeds"].float(), dim=-1)
    t2img = items["text_to_image"]
    n_img, n_txt = img.shape[0], txt.shape[0]
    i2t_itc, t2i_itc = gt_ranks(lambda r: img[r] @ txt.T, lambda c: txt[c] @ img.T, n_img, t2img, chunk)
    out = {f"itc_{key}": v for key, v in recall_from_ranks(i2t_itc, t2i_itc, t2img, n_img, ks).items()}
    k_t, k_i = min(k, n_txt), min(k, n_img)
    top_t = _topk(img, txt, k_t, chunk)  # [n_img, k_t] text candidates per image
    top_i = _topk(txt, img, k_i, chunk)  # [n_txt, k_i] image candidates per text
    rows_i = torch.arange(n_img, device=img.device)[:, None].expand_as(top_t)
    rows_t = torch.arange(n_txt, device=img.device)[:, None].expand_as(top_i)
    # pair key = text * n_img + image: sorted keys put a text's pairs together (few texts per chunk)
    keys = torch.cat([(top_t * n_img + rows_i).flatten(), (rows_t * n_img + top_i).flatten()]).unique()
    scores = torch.zeros(keys.numel(), device=img.device)
    world, rank = (
        (dist.get_world_size(), dist.get_rank()) if dist.is_available() and dist.is_initialized() else (1, 0)
    )
    for c, start in enumerate(range(0, keys.numel(), chunk)):
        if c % world == rank:
            part = keys[start : start + chunk]
            scores[start : start + chunk] = score_pairs(part % n_img, part // n_img).float()
    if world > 1:
        dist.all_reduce(scores)  # each pair was scored by one rank; the others add exact zeros

    def lookup(texts: Tensor, images: Tensor) -> Tensor:
        return scores[torch.searchsorted(keys, texts * n_img + images)]

    s_i2t = lookup(top_t, rows_i)
    s_t2i = lookup(rows_t, top_i)
    i2t = _candidate_ranks(top_t[t2img], s_i2t[t2img], torch.arange(n_txt, device=img.device), i2t_itc, k_t)
    t2i = _candidate_ranks(top_i, s_t2i, t2img, t2i_itc, k_i)
    out.update(recall_from_ranks(i2t, t2i, t2img, n_img, ks))
    return out
