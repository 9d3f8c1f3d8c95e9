"""Which tensors of a state hold a NaN or an infinity (export refuses them, training stops)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def non_finite_tensors(tensors: dict[str, Any], limit: int = 5) -> list[str]:
    """Names of the floating-point tensors in ``tensors`` holding a NaN or an infinity.

    Args:
        tensors: name -> tensor (other values are ignored), e.g. a ``state_dict``.
        limit: stop after this many names.
    """
    bad = []
    for name, value in tensors.items():
        if isinstance(value, Tensor) and value.is_floating_point():
            if not bool(torch.isfinite(value).all()):
                bad.append(name)
                if len(bad) >= limit:
                    break
    return bad
