"""VisDial v1.0 metrics as visdial-challenge-starter-pytorch computes them.

Ranks 1..100 come from a descending sort of the option scores (ties broken by option index).
NDCG (dense annotations): k = number of options with non-zero relevance for that question; DCG of
the top-k predicted options with gain = relevance and discount log2(i + 2); the ideal DCG uses the
top-k of the relevances sorted. torchmetrics' RetrievalNormalizedDCG (fixed top_k, tie averaging)
is a different number.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vltasks.metrics.utilities import mean_or

SPARSE_KEYS = ("r@1", "r@5", "r@10", "mean_rank", "mrr")


def _order(scores: Tensor) -> Tensor:
    return torch.sort(scores, dim=-1, descending=True, stable=True).indices


def gt_ranks(scores: Tensor, gt_index: Tensor) -> Tensor:
    """1-based rank of the GT option of each question, [N]."""
    if scores.ndim != 2:
        raise ValueError(f"scores must be [N, n_options], got {tuple(scores.shape)}")
    gt_index = torch.as_tensor(gt_index, device=scores.device).long().reshape(-1, 1)
    return (_order(scores) == gt_index).long().argmax(-1) + 1


def ndcg_per_question(scores: Tensor, relevance: Tensor) -> Tensor:
    """NDCG of each question, [N] float64; NaN where no option is relevant (no dense annotation)."""
    relevance = torch.as_tensor(relevance, device=scores.device).double()
    if relevance.shape != scores.shape:
        raise ValueError(f"relevance {tuple(relevance.shape)} must match scores {tuple(scores.shape)}")
    k = (relevance != 0).sum(-1, keepdim=True)
    position = torch.arange(scores.shape[-1], device=scores.device)
    discount = torch.log2(position.double() + 2)
    in_top_k = position[None, :] < k
    dcg = (relevance.gather(-1, _order(scores)) / discount * in_top_k).sum(-1)
    ideal = (torch.sort(relevance, dim=-1, descending=True).values / discount * in_top_k).sum(-1)
    return torch.where(k.squeeze(-1) > 0, dcg / ideal.clamp(min=1e-300), torch.full_like(dcg, float("nan")))


def sparse_from_ranks(ranks: Tensor) -> dict[str, Tensor]:
    r = ranks.double()
    if r.numel() == 0:
        return {key: torch.tensor(float("nan"), dtype=torch.float64) for key in SPARSE_KEYS}
    return {
        "r@1": (r <= 1).double().mean(),
        "r@5": (r <= 5).double().mean(),
        "r@10": (r <= 10).double().mean(),
        "mean_rank": r.mean(),
        "mrr": (1.0 / r).mean(),
    }


def ndcg_from_values(ndcg: Tensor) -> Tensor:
    """Mean over the questions that have dense annotations."""
    return mean_or(ndcg[~torch.isnan(ndcg)], empty=float("nan"))


def visdial_metrics(scores: Tensor, gt_index: Tensor, relevance: Tensor | None = None) -> dict[str, Tensor]:
    """{"r@1", "r@5", "r@10", "mean_rank", "mrr", "ndcg"} from scores[N, 100] (higher is better).

    `relevance[N, 100]` holds the dense annotations; questions whose relevance row is all zero
    (rounds without dense annotation) are left out of NDCG. Without `relevance`, "ndcg" is NaN.
    """
    out = sparse_from_ranks(gt_ranks(scores, gt_index))
    if relevance is None:
        out["ndcg"] = torch.tensor(float("nan"), dtype=torch.float64)
    else:
        out["ndcg"] = ndcg_from_values(ndcg_per_question(scores, relevance))
    return out
