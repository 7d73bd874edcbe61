"""MRM: mask regions/patches and predict what was hidden (seed 1.(3), MRM details).

- MRC-CE (hard detector label):  L = -sum_k y_k log p_theta(k)
- MRC-KL (detector soft label q): L = sum_k q_k log(q_k / p_theta(k)) = KL(q || p_theta)
- MRFR (feature regression):     L = || f_theta(masked region) - v_hat ||_2^2
Each per-region loss is averaged over the masked regions only: unmasked regions are visible to the
model, so scoring them would reward copying. Targets (q, v_hat) come from a detector or a vision
backbone and are detached, so the loss never trains the target side towards the prediction.
Empty masks give 0 that stays in the graph (sum / max(count, 1)), not the NaN of an empty mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["apply_region_mask", "mask_patches", "mask_regions", "mrc_ce_loss", "mrc_kl_loss", "mrfr_loss"]


def mask_regions(
    batch_size: int,
    num_regions: int,
    mask_probability: float = 0.15,
    *,
    valid_mask: Tensor | None = None,
    at_least_one: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Bernoulli region mask [batch_size, num_regions] (True = masked), UNITER style.

    ``valid_mask`` (True = a real region, False = padding) keeps padding unmasked. ``at_least_one``
    masks one random valid region in samples whose draw masked none, as UNITER does, so every sample
    contributes an MRM target.
    """
    shape = (batch_size, num_regions)
    valid = torch.ones(shape, dtype=torch.bool, device=device) if valid_mask is None else valid_mask.bool()
    mask = (torch.rand(shape, generator=generator, device=valid.device) < mask_probability) & valid
    if at_least_one and num_regions > 0:
        scores = torch.rand(shape, generator=generator, device=valid.device).masked_fill(~valid, -1.0)
        pick = F.one_hot(scores.argmax(dim=1), num_regions).bool()
        need = ~mask.any(dim=1, keepdim=True) & valid.any(dim=1, keepdim=True)
        mask = mask | (pick & need)
    return mask


def mask_patches(
    batch_size: int,
    num_patches: int,
    mask_ratio: float = 0.4,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Patch mask [batch_size, num_patches] with exactly round(mask_ratio * num_patches) True per row.

    MIM masks patches at random (seed: "MIM: random masking"); a fixed count per image (MAE/BEiT) keeps
    the sequence cost and the loss weight per image equal across the batch.
    """
    n_mask = int(round(mask_ratio * num_patches))
    # A uniform random permutation per row; the positions holding its n_mask smallest values are a
    # uniformly random subset of exactly n_mask patches.
    perm = torch.rand(batch_size, num_patches, generator=generator, device=device).argsort(dim=1)
    return perm < n_mask


def apply_region_mask(features: Tensor, mask: Tensor, fill: float | Tensor = 0.0) -> Tensor:
    """Replace masked region features [..., D] by ``fill`` (UNITER: zeros; or a learned [D] token)."""
    fill_t = torch.as_tensor(fill, dtype=features.dtype, device=features.device)
    return torch.where(mask.unsqueeze(-1), fill_t, features)


def _masked_mean(per_region: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return per_region.mean()
    mask = mask.to(device=per_region.device, dtype=torch.bool)
    if mask.shape != per_region.shape:
        raise ValueError(f"mask {tuple(mask.shape)} does not match regions {tuple(per_region.shape)}")
    total = torch.where(mask, per_region, torch.zeros_like(per_region)).sum()
    return total / mask.sum().clamp(min=1)


def mrc_ce_loss(logits: Tensor, target_labels: Tensor, mask: Tensor | None = None) -> Tensor:
    """MRC-CE: cross-entropy of the region classifier [..., K] against the detector's top class [...]."""
    if logits.shape[:-1] != target_labels.shape:
        raise ValueError(f"mrc_ce_loss: logits {tuple(logits.shape)} vs labels {tuple(target_labels.shape)}")
    labels = target_labels.long()
    if mask is not None:  # unmasked labels may be padding values; keep them in range
        labels = labels.masked_fill(~mask.to(device=labels.device, dtype=torch.bool), 0)
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    return _masked_mean(nll.view(labels.shape), mask)


def mrc_kl_loss(logits: Tensor, target_probs: Tensor, mask: Tensor | None = None) -> Tensor:
    """MRC-KL: KL(q || p_theta) per region, summed over the K classes, 0 log 0 taken as 0."""
    if logits.shape != target_probs.shape:
        raise ValueError(f"mrc_kl_loss: logits {tuple(logits.shape)} vs q {tuple(target_probs.shape)}")
    q = target_probs.detach().to(logits.dtype)
    kl = (torch.xlogy(q, q) - q * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    return _masked_mean(kl, mask)


def mrfr_loss(pred_feats: Tensor, target_feats: Tensor, mask: Tensor | None = None) -> Tensor:
    """MRFR: squared L2 distance summed over the feature dim (the seed's ||.||_2^2, not a per-dim MSE)."""
    if pred_feats.shape != target_feats.shape:
        raise ValueError(f"mrfr_loss: pred {tuple(pred_feats.shape)} vs target {tuple(target_feats.shape)}")
    sq = (pred_feats - target_feats.detach().to(pred_feats.dtype)).pow(2).sum(dim=-1)
    return _masked_mean(sq, mask)
