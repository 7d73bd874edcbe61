"""ITM: binary image-text matching on the fused [CLS] vector, with ITC-mined hard negatives (seed 1.(2)).

Seed: p(y=1 | z) = sigmoid(w^T z + b),  L_ITM = -1/N sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)].
"Often trained with hard negatives found by ITC": ``sample_itm_hard_negatives`` draws them the ALBEF
way, in proportion to the softmax of the contrastive similarity, never drawing a positive.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["itm_loss", "sample_itm_hard_negatives"]


def itm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean matching loss over N pairs; labels are 1 for matched, 0 for unmatched.

    ``logits`` of shape [N] (or [N, 1]) are the seed's w^T z + b and get the sigmoid BCE of the seed
    formula. Shape [N, 2] is the 2-way head of ALBEF/BLIP (class 1 = match) and gets softmax CE, which
    is the same model family with p = softmax(l)[1] = sigmoid(l_1 - l_0).
    """
    if logits.dim() == 2 and logits.shape[-1] == 1:
        logits = logits.squeeze(-1)
    if logits.dim() == 1:
        if labels.shape != logits.shape:
            raise ValueError(f"itm_loss: labels {tuple(labels.shape)} vs logits {tuple(logits.shape)}")
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    if logits.dim() == 2 and logits.shape[-1] == 2:
        if labels.shape != logits.shape[:1]:
            raise ValueError(f"itm_loss: labels {tuple(labels.shape)} vs logits {tuple(logits.shape)}")
        return F.cross_entropy(logits, labels.long())
    raise ValueError(f"itm_loss expects logits [N], [N, 1] or [N, 2], got {tuple(logits.shape)}")


def _draw(sim: Tensor, positive: Tensor, generator: torch.Generator | None, what: str) -> Tensor:
    # Masked softmax: positives get -inf, so they have probability exactly 0 and the negatives keep
    # the ratios of softmax(sim) (ALBEF's softmax-then-zero, renormalized). Unlike softmax-then-zero
    # it cannot underflow to an all-zero row when the positive dominates a sharp similarity.
    logits = sim.detach().float().masked_fill(positive, float("-inf"))
    empty = positive.all(dim=1)
    if bool(empty.any()):
        rows = empty.nonzero().flatten().tolist()
        raise ValueError(f"sample_itm_hard_negatives: {what} rows {rows} have no negative candidate")
    weights = logits.softmax(dim=1)
    return torch.multinomial(weights, 1, generator=generator).squeeze(1)


def sample_itm_hard_negatives(
    sim_i2t: Tensor,
    sim_t2i: Tensor,
    generator: torch.Generator | None = None,
    same_image_mask: Tensor | None = None,
    offset: int = 0,
) -> tuple[Tensor, Tensor]:
    """Pick one hard negative text per image and one hard negative image per text (ALBEF).

    Args:
        sim_i2t: [B, N] image-to-text similarity (typically the ITC logits); pair (i, i + offset) is
            positive. N = B for the local batch (ALBEF); N > B when the columns are the global batch
            gathered from every process (BLIP's retrieval finetuning) and this rank's rows start at
            column ``offset``.
        sim_t2i: [B, N] text-to-image similarity, rows local texts, columns (global) images.
        generator: for reproducible draws; must live on the same device as the similarities.
        same_image_mask: optional [B, N] bool, True where text/image j shares row i's image (COCO has
            five captions per image); those are positives too and never drawn. For a square batch,
            rows index images and its transpose is used for the texts.

    Returns:
        (neg_text_for_image [B], neg_image_for_text [B]) as long indices into the N columns.
        Similarities are detached: sampling carries no gradient.
    """
    b, n = sim_i2t.shape[0], sim_i2t.shape[-1]
    if sim_i2t.dim() != 2 or sim_t2i.shape != (b, n) or not 0 <= offset <= n - b:
        raise ValueError(
            f"need [B, N] similarities with B + offset <= N, got {tuple(sim_i2t.shape)} and "
            f"{tuple(sim_t2i.shape)} with offset {offset}"
        )
    rows = torch.arange(b, device=sim_i2t.device)
    positive = torch.zeros(b, n, dtype=torch.bool, device=sim_i2t.device)
    positive[rows, rows + offset] = True
    if same_image_mask is not None:
        if same_image_mask.shape != (b, n):
            raise ValueError(f"same_image_mask must be [{b}, {n}], got {tuple(same_image_mask.shape)}")
        positive = positive | same_image_mask.to(device=sim_i2t.device, dtype=torch.bool)
    neg_text = _draw(sim_i2t, positive, generator, "image")
    neg_image = _draw(sim_t2i, positive.t() if b == n else positive, generator, "text")
    return neg_text, neg_image
