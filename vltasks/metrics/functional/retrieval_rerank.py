"""Two-stage retrieval evaluation (ALBEF/BLIP): ITC similarity -> top-k per query -> ITM re-scoring.

`rerank_recalls` takes the items a `RetrievalCache` collected from every process, scores the union
of both directions' top-k pairs with a caller-given ITM scorer and returns the ITC and the re-ranked
recalls. Identical on any number of processes: items come de-duplicated and sorted by id, pairs are
cut into fixed chunks (chunk c is scored by rank c mod W) and summed across ranks with
`torch.distributed` (torch itself, so allowed in the metrics room).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from vltasks.metrics.functional.retrieval import gt_ranks, recall_from_ranks

# (image indices [b], text indices [b]) -> ITM scores [b]; indices into the sorted, de-duplicated sets
PairScorer = Callable[[Tensor, Tensor], Tensor]


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
