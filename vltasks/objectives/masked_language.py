"""MLM: BERT masking of text tokens and the cross-entropy on the masked positions (seed 1.(3)).

The seed lists MLM with LXMERT/UNITER; the masking recipe is BERT's: select 15% of the real tokens;
of those, 80% become [MASK], 10% a random token, 10% stay unchanged (so the model cannot learn that
only [MASK] positions matter). The loss is -log p(w_t) averaged over the selected positions only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["IGNORE_INDEX", "mask_tokens", "mlm_loss"]

IGNORE_INDEX = -100
"""Label of positions that carry no loss (PyTorch's and Hugging Face's convention)."""


def mask_tokens(
    input_ids: Tensor,
    vocab_size: int,
    mask_token_id: int,
    special_tokens_mask: Tensor | None = None,
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
    *,
    pad_token_id: int | None = None,
    attention_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Apply BERT's 80/10/10 masking; returns ``(masked_ids, labels)`` and leaves ``input_ids`` intact.

    Never selected: positions where ``special_tokens_mask`` is true ([CLS], [SEP], padding as the
    tokenizer reports them), tokens equal to ``pad_token_id``, positions where ``attention_mask`` is 0.
    ``labels`` hold the original id on selected positions and ``IGNORE_INDEX`` elsewhere. Random
    replacements are uniform over ``[0, vocab_size)`` as in BERT and Hugging Face's collator.
    ``generator`` must be on the device of ``input_ids``.
    """
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"mlm_probability must be in [0, 1], got {mlm_probability}")
    device = input_ids.device
    excluded = torch.zeros_like(input_ids, dtype=torch.bool)
    if special_tokens_mask is not None:
        excluded |= special_tokens_mask.to(device=device, dtype=torch.bool)
    if pad_token_id is not None:
        excluded |= input_ids == pad_token_id
    if attention_mask is not None:
        excluded |= attention_mask.to(device) == 0

    shape = input_ids.shape
    selected = (torch.rand(shape, generator=generator, device=device) < mlm_probability) & ~excluded
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))

    # One uniform draw decides the branch: [0, .8) -> [MASK], [.8, .9) -> random, [.9, 1) -> unchanged.
    u = torch.rand(shape, generator=generator, device=device)
    to_mask = selected & (u < 0.8)
    to_random = selected & (u >= 0.8) & (u < 0.9)
    random_ids = torch.randint(vocab_size, shape, generator=generator, device=device, dtype=input_ids.dtype)

    masked_ids = input_ids.clone()
    masked_ids[to_mask] = mask_token_id
    masked_ids[to_random] = random_ids[to_random]
    return masked_ids, labels


def mlm_loss(logits: Tensor, labels: Tensor, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Mean of -log p(original token) over the selected positions.

    ``logits`` [..., V] and ``labels`` [...] are aligned (no shift: MLM predicts the token at its own
    position). Computed as sum / max(count, 1): a batch where nothing was selected gives 0 that still
    belongs to the graph instead of the NaN of an empty mean, and no host-device sync is needed.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"mlm_loss: logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}")
    flat_labels = labels.reshape(-1).long()
    nll = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), flat_labels, ignore_index=ignore_index, reduction="sum"
    )
    return nll / (flat_labels != ignore_index).sum().clamp(min=1)
