"""Prefix-LM: caption NLL under teacher forcing, conditioned on a vision prefix (seed 1.(4)).

Seed: L_NLL = -sum_{t=1}^{T} log p_theta(w_t | w_<t, prefix(x)), the decoder input being
[v_1..v_M ; BOS ; w_1 .. w_T] (vision tokens, then text).

The shift lives here and only here: callers pass ``logits`` and ``labels`` aligned on the *same*
positions as the decoder input (Hugging Face's ``labels = input_ids`` convention), and this function
scores ``logits[:, t]`` against ``labels[:, t + 1]``, since the output at position t has seen inputs
0..t and predicts the next one. Heads never shift by hand, so the off-by-one is in one place.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["prefix_lm_loss"]


def prefix_lm_loss(
    logits: Tensor,
    labels: Tensor,
    prefix_len: int = 0,
    ignore_index: int = -100,
    reduction: Literal["mean", "sum"] = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Teacher-forced next-token NLL over the target positions.

    Args:
        logits: [B, L, V] decoder outputs for the whole input sequence (prefix included).
        labels: [B, L] token ids at the same positions as ``logits`` (pad/prompt set to
            ``ignore_index``), or [B, L - prefix_len] for the text part only, which is then placed
            after the prefix.
        prefix_len: number of leading conditioning positions that are never targets: the M vision
            tokens, plus BOS or a prompt when those are given rather than generated (the seed's sum
            starts at w_1, so pass M + 1 for [v_1..v_M ; BOS ; w_1..]).
        reduction: "mean" averages over target tokens (the usual training scale, independent of
            caption length); "sum" is the seed's -sum_t log p, summed over the batch as well.
        label_smoothing: mix each one-hot target with the uniform distribution over the vocabulary
            (torch's definition); BLIP finetunes its captioner with 0.1. 0 is the seed's exact NLL.

    Returns 0 attached to the graph when no position is a target, not NaN.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if logits.dim() != 3:
        raise ValueError(f"prefix_lm_loss expects logits [B, L, V], got {tuple(logits.shape)}")
    b, seq_len, vocab = logits.shape
    if labels.shape == (b, seq_len - prefix_len) and prefix_len > 0:
        pad = labels.new_full((b, prefix_len), ignore_index)
        labels = torch.cat([pad, labels], dim=1)
    if labels.shape != (b, seq_len):
        raise ValueError(
            f"prefix_lm_loss: labels {tuple(labels.shape)} fit neither logits {(b, seq_len)} "
            f"nor the text part {(b, seq_len - prefix_len)} after a prefix of {prefix_len}"
        )
    if prefix_len > 0:
        labels = labels.clone()
        labels[:, :prefix_len] = ignore_index
    # The shift: position t predicts token t + 1. Shifting the labels left (the last position gets
    # ignore_index) rather than slicing the logits avoids copying the [B, L, V] tensor.
    shift_labels = F.pad(labels.long(), (0, 1), value=ignore_index)[:, 1:].reshape(-1)
    nll = F.cross_entropy(
        logits.reshape(-1, vocab),
        shift_labels,
        ignore_index=ignore_index,
        reduction="sum",
        label_smoothing=label_smoothing,
    )
    if reduction == "sum":
        return nll
    return nll / (shift_labels != ignore_index).sum().clamp(min=1)
