"""Array conversion shared by the metric modules (they accept numpy arrays or torch tensors)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def to_numpy(x: Any, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``x`` as a numpy array (tensors are detached and moved to the CPU).

    Args:
        x: array-like or tensor.
        name: argument name, used in error messages.
        ndim: required number of dimensions (or allowed numbers), if any.

    Raises:
        ValueError: wrong number of dimensions.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        # numpy has no bfloat16
        x = x.float() if x.dtype == torch.bfloat16 else x
        x = x.numpy()
    arr = np.asarray(x)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and arr.ndim not in allowed:
        raise ValueError(f"{name}: expected {' or '.join(map(str, allowed))} dims, got {arr.shape}")
    return arr


def check_binary(arr: np.ndarray, name: str) -> None:
    """Raise ValueError unless every value of ``arr`` is 0 or 1."""
    if not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name}: expected binary 0/1 values, got {np.unique(arr)[:8]}...")
