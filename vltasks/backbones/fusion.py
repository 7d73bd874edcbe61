"""A light fusion block for dual encoders (CLIP) when a head needs cross-modal tokens.

Both token streams are projected to one width, tagged with a modality embedding, prefixed by a
learned [CLS] and run through a few transformer layers; the [CLS] output is the pooled vector.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FusionBlock(nn.Module):
    def __init__(self, text_dim: int, image_dim: int, width: int, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.text_proj = nn.Linear(text_dim, width)
        self.image_proj = nn.Linear(image_dim, width)
        self.modality = nn.Embedding(2, width)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.cls, std=0.02)

    def forward(
        self, text_tokens: Tensor, text_mask: Tensor, image_tokens: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        b = text_tokens.shape[0]
        t = self.text_proj(text_tokens) + self.modality.weight[0]
        v = self.image_proj(image_tokens) + self.modality.weight[1]
        x = torch.cat([self.cls.expand(b, -1, -1), t, v], dim=1)
        ones = text_mask.new_ones(b, 1)
        mask = torch.cat([ones, text_mask, text_mask.new_ones(b, v.shape[1])], dim=1)
        x = self.norm(self.encoder(x, src_key_padding_mask=mask == 0))
        return x, mask, x[:, 0]
