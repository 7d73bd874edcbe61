"""What a backbone adds to read clips (the ``video`` capability), whatever its family.

A clip is encoded frame by frame through the family's own image encoder; `VideoAdapter` then
caps the tokens per frame, adds a learned temporal position embedding (one vector per frame
index, added to every token of the frame) and, for pre-extracted features, projects each time step
into the visual width as one token. Families pool the result their way (backbones/base.py): dual
encoders average the frames' embeddings (CLIP4Clip's meanP), fusion and decoders read the frames'
tokens concatenated. The adapter is saved next to the model (``vltasks_video.json`` +
``vltasks_video.safetensors``), so checkpoints and ``save_pretrained`` directories rebuild it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

VIDEO_CONFIG = "vltasks_video.json"
VIDEO_WEIGHTS = "vltasks_video.safetensors"


@torch.no_grad()
def _sincos_1d_(table: Tensor) -> None:
    """Row t = the transformer's sin-cos encoding of position t (sines then cosines)."""
    t, dim = table.shape
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    angles = torch.arange(t, dtype=torch.float64)[:, None] * omega
    table.zero_()
    table[:, : dim // 2] = angles.sin().to(table)
    table[:, dim // 2 : 2 * (dim // 2)] = angles.cos().to(table)


class VideoAdapter(nn.Module):
    def __init__(
        self,
        width: int,
        max_frames: int = 8,
        tokens_per_frame: int | None = None,
        feature_dim: int | None = None,
        temporal_init: str = "normal",
    ) -> None:
        super().__init__()
        if temporal_init not in ("normal", "sincos"):
            raise ValueError(f"backbone.video.temporal_init must be normal or sincos, got {temporal_init!r}")
        if tokens_per_frame is not None and tokens_per_frame < 2:
            raise ValueError(
                f"backbone.video.tokens_per_frame must be >= 2 ([CLS] + patches), got {tokens_per_frame}"
            )
        self.config = {
            "max_frames": int(max_frames),
            "tokens_per_frame": tokens_per_frame,
            "feature_dim": feature_dim,
            "temporal_init": temporal_init,
        }
        self.width, self.max_frames, self.tokens_per_frame = width, int(max_frames), tokens_per_frame
        self.temporal = nn.Parameter(torch.empty(self.max_frames, width))
        if temporal_init == "sincos":  # a model trained from scratch tells frames apart from step one
            _sincos_1d_(self.temporal)
        else:
            nn.init.normal_(self.temporal, std=0.02)
        self.features = nn.Linear(int(feature_dim), width) if feature_dim else None

    def add_time(self, tokens: Tensor) -> Tensor:
        """tokens [B, T, L, D] + the temporal embedding of each frame index."""
        t = tokens.shape[1]
        if t > self.max_frames:
            raise ValueError(
                f"a clip of {t} frames; the backbone takes {self.max_frames} (backbone.video.max_frames)"
            )
        return tokens + self.temporal[:t, None, :].to(tokens.dtype)

    def project(self, features: Tensor) -> Tensor:
        """Pre-extracted features [B, T, F] -> one token per time step [B, T, 1, D]."""
        if self.features is None:
            raise ValueError("feature-file clips need backbone.video.feature_dim (the features' width)")
        if features.shape[-1] != self.features.in_features:
            raise ValueError(
                f"features of width {features.shape[-1]}, the backbone projects {self.features.in_features} "
                f"(backbone.video.feature_dim)"
            )
        return self.features(features.to(self.features.weight.dtype))[:, :, None, :]

    def cap(self, tokens: Tensor) -> Tensor:
        """[N, 1 + P, D] frame tokens ([CLS] first, P patches on a square grid) -> at most
        ``tokens_per_frame``: [CLS] + the patch grid average-pooled to the largest square that fits."""
        cap = self.tokens_per_frame
        if cap is None or tokens.shape[1] <= cap:
            return tokens
        side = math.isqrt(tokens.shape[1] - 1)
        if side * side != tokens.shape[1] - 1:
            raise ValueError(f"cannot cap {tokens.shape[1] - 1} patches: not a square grid")
        grid = tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], -1, side, side)
        pooled = F.adaptive_avg_pool2d(grid, math.isqrt(cap - 1)).flatten(2).transpose(1, 2)
        return torch.cat([tokens[:, :1], pooled], dim=1)

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        (Path(path) / VIDEO_CONFIG).write_text(json.dumps({**self.config, "width": self.width}))
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(Path(path) / VIDEO_WEIGHTS))

    @classmethod
    def load(cls, path: str | Path, weights: bool = True) -> VideoAdapter | None:
        """The adapter saved in a directory (None when it holds none); ``weights`` False: the
        architecture only (a checkpoint's state dict fills it)."""
        config = Path(path) / VIDEO_CONFIG
        if not config.is_file():
            return None
        spec: dict[str, Any] = json.loads(config.read_text())
        adapter = cls(spec.pop("width"), **spec)
        if weights:
            adapter.load_state_dict(load_file(str(Path(path) / VIDEO_WEIGHTS)))
        return adapter
