"""ITC: symmetric InfoNCE between image and text embeddings (seed 1.(1)).

L_ITC = 1/2 (L_i->t + L_t->i), with L_i->t = -1/N sum_i log softmax_j(sim(v_i, t_j) / tau)[i].

Under torch.distributed the negatives come from the whole global batch: each rank gathers every
rank's embeddings *with gradient* and scores its local rows against the global columns, labels
offset by the number of rows on lower ranks (open_clip's ``local_loss=True, gather_with_grad=True``).
Why this shape: the rank's loss is the sum over its own rows divided by N / W (N global rows, W
ranks: the plain mean over its rows when ranks hold equal counts), so the mean of the rank losses is
the global-batch loss even when a short last batch leaves ranks uneven, and because the gather's
backward sums gradients from every rank, DDP's gradient averaging then yields exactly the
one-process gradient of the global-batch loss. Computing the full global matrix on every rank
instead would scale gradients by the world size.

With ``ids`` (e.g. COCO image ids, five captions each) every column of the same id is a positive:
the target row is uniform over them (ALBEF/BLIP retrieval finetuning), so two captions of one image in
a batch are not pushed apart as negatives. Unique ids give exactly the one-hot loss.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LearnableTemperature", "gather_with_grad", "itc_loss"]


class LearnableTemperature(nn.Module):
    """CLIP's learnable logit scale 1/tau, stored as a log so it stays positive.

    ``forward()`` returns the scale exp(log_scale) clamped at ``max_scale`` (CLIP: init 1/0.07,
    clamp 100) so a runaway temperature cannot make the softmax one-hot.
    """

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0) -> None:
        super().__init__()
        if init_temperature <= 0:
            raise ValueError(f"init_temperature must be > 0, got {init_temperature}")
        self.max_scale = max_scale
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))

    def forward(self) -> Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)

    @property
    def temperature(self) -> float:
        """Current tau = 1 / scale, for logging."""
        return 1.0 / float(self.forward().detach())


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(x: Tensor) -> tuple[Tensor, int]:
    """All-gather ``x`` [n, ...] from every rank along dim 0, keeping the autograd graph.

    Returns the concatenated global tensor and the row offset of this rank's rows in it. Ranks may
    hold different row counts (a short last batch): sizes are exchanged first and rows padded for the
    collective, then the padding is cut off again.
    """
    if not _distributed():
        return x, 0
    import torch.distributed.nn.functional as dist_fn

    world, rank = dist.get_world_size(), dist.get_rank()
    n = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    sizes_t = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes_t, n)
    sizes = [int(s.item()) for s in sizes_t]
    padded = F.pad(x, (0, 0) * (x.dim() - 1) + (0, max(sizes) - x.shape[0]))
    parts = dist_fn.all_gather(padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)]), sum(sizes[:rank])


def itc_loss(
    image_emb: Tensor,
    text_emb: Tensor,
    logit_scale: Tensor | float | None = None,
    *,
    temperature: Tensor | float | None = None,
    gather: bool = True,
    normalize: bool = True,
    ids: Tensor | None = None,
) -> Tensor:
    """Symmetric InfoNCE over matched rows (image i pairs with text i).

    Args:
        image_emb, text_emb: [n, d] local embeddings; L2-normalized here when ``normalize`` (the
            seed's sim is cosine similarity), pass ``normalize=False`` if already normalized.
        logit_scale: 1/tau, e.g. ``LearnableTemperature()()``. Alternatively give ``temperature``
            (tau). Neither: tau = 0.07.
        ids: optional [n] integer ids of the pairs' images; rows sharing an id are all positives.
        gather: under an initialized process group, use the global batch as negatives (see module
            docstring). The result is this rank's share; its mean over ranks is the global loss,
            also when ranks hold different row counts.
    """
    if image_emb.shape != text_emb.shape or image_emb.dim() != 2:
        raise ValueError(f"itc_loss needs two [n, d] tensors, got {image_emb.shape} and {text_emb.shape}")
    if logit_scale is not None and temperature is not None:
        raise ValueError("give either logit_scale or temperature, not both")
    scale = 1.0 / temperature if temperature is not None else logit_scale
    if scale is None:
        scale = 1.0 / 0.07
    if normalize:
        image_emb = F.normalize(image_emb, dim=-1)
        text_emb = F.normalize(text_emb, dim=-1)
    offset, per_rank_rows = 0, float(image_emb.shape[0])
    all_image, all_text = image_emb, text_emb
    if gather and _distributed():
        all_image, offset = gather_with_grad(image_emb)
        all_text, _ = gather_with_grad(text_emb)
        per_rank_rows = all_image.shape[0] / dist.get_world_size()  # N / W: this rank's rows when even
    if all_image.shape[0] == 0:
        raise ValueError("itc_loss: no rows on any process")
    logits_i2t = scale * image_emb @ all_text.t()  # local images vs global texts
    logits_t2i = scale * text_emb @ all_image.t()  # local texts vs global images
    if ids is None:
        labels = torch.arange(image_emb.shape[0], device=image_emb.device) + offset
        pair = F.cross_entropy(logits_i2t, labels, reduction="sum") + F.cross_entropy(
            logits_t2i, labels, reduction="sum"
        )
        return 0.5 * pair / per_rank_rows  # a rank without rows contributes 0 (its gathered share)
    if ids.shape != (image_emb.shape[0],):
        raise ValueError(f"itc_loss: ids must be [n] = [{image_emb.shape[0]}], got {tuple(ids.shape)}")
    with torch.no_grad():
        all_ids = gather_with_grad(ids)[0] if gather and _distributed() else ids
        targets = (ids[:, None] == all_ids[None, :]).to(logits_i2t.dtype)
        targets = targets / targets.sum(dim=1, keepdim=True)
    pair = F.cross_entropy(logits_i2t, targets, reduction="sum") + F.cross_entropy(
        logits_t2i, targets, reduction="sum"
    )
    return 0.5 * pair / per_rank_rows
