"""AdamW with no-decay groups and a head learning-rate multiplier; warmup then cosine/linear decay."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ("cosine", "linear", "constant")


def param_groups(
    parts: list[tuple[nn.Module, float]], lr: float, weight_decay: float
) -> list[dict[str, Any]]:
    """Biases and norm/scale vectors (ndim < 2) get no weight decay, as in BERT/ViLT/CLIP recipes."""
    groups = []
    for module, mult in parts:
        decay = [p for p in module.parameters() if p.requires_grad and p.ndim >= 2]
        no_decay = [p for p in module.parameters() if p.requires_grad and p.ndim < 2]
        if decay:
            groups.append({"params": decay, "lr": lr * mult, "weight_decay": weight_decay})
        if no_decay:
            groups.append({"params": no_decay, "lr": lr * mult, "weight_decay": 0.0})
    return groups


def warmup_schedule(total_steps: int, warmup: float, schedule: str, min_ratio: float = 0.0):
    """Multiplier for LambdaLR. `warmup` < 1 is a fraction of total steps, else a step count."""
    if schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {schedule!r}")
    total = max(1, int(total_steps))
    warm = int(round(warmup * total)) if warmup < 1 else int(warmup)

    def fn(step: int) -> float:
        if step < warm:
            return (step + 1) / max(1, warm)
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total - warm))
        decay = 0.5 * (1 + math.cos(math.pi * progress)) if schedule == "cosine" else 1 - progress
        return min_ratio + (1 - min_ratio) * decay

    return fn


def build_optimizer(
    parts: list[tuple[nn.Module, float]], cfg: dict[str, Any], total_steps: int
) -> tuple[torch.optim.Optimizer, LambdaLR]:
    opt = torch.optim.AdamW(
        param_groups(parts, cfg["lr"], cfg["weight_decay"]),
        lr=cfg["lr"],
        betas=tuple(cfg["betas"]),
        eps=cfg["eps"],
    )
    sched = LambdaLR(opt, warmup_schedule(total_steps, cfg["warmup"], cfg["schedule"], cfg["min_lr_ratio"]))
    return opt, sched
