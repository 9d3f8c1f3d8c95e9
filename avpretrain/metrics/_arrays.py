"""Array conversion shared by the metric modules (they accept numpy arrays or torch tensors).

Also reads the row states of the ``torchmetrics.Metric`` collectors back as numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics.utilities import dim_zero_cat


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


def state_numpy(state: Tensor | list[Tensor]) -> np.ndarray:
    """A ``dist_reduce_fx="cat"`` metric state as one numpy array (rows of every update).

    Before a sync the state is the list of per-update tensors, after it one tensor; both give
    the rows in update order (rank order after a sync).
    """
    return to_numpy(dim_zero_cat(state), "state")


def state_rows(state: Tensor | list[Tensor]) -> int:
    """Number of rows in a ``cat`` metric state (0 before any update)."""
    if isinstance(state, Tensor):
        return state.shape[0]
    return sum(t.shape[0] for t in state)
