"""Learning-rate rules: scaling by global batch size and warmup followed by cosine decay."""

from __future__ import annotations

import math


def scaled_lr(base_lr: float, global_batch: int, reference_batch: int = 256) -> float:
    """MAE's linear scaling rule: ``lr = base_lr * global_batch / reference_batch``."""
    return base_lr * global_batch / reference_batch


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the peak learning rate at ``step``.

    Linear warmup from 0 over ``warmup_steps``, then half a cosine down to ``min_ratio`` at
    ``total_steps``; constant at ``min_ratio`` afterwards.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if total_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
