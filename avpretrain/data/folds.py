"""Grouped k-fold assignment for the quality protocols (YT-NTU-AVQ 5-fold, SFQA by source)."""

from __future__ import annotations

import numpy as np


def assign_folds(groups: list[str], folds: int = 5, seed: int = 0) -> list[int]:
    """Deterministic k-fold assignment; items of one group share a fold.

    Groups are shuffled by ``seed``, then dealt largest first (stable) to the fold holding
    the fewest items so far (lowest index on ties); with one item per group this is a
    round robin over the shuffled order, giving folds that differ in size by at most one.

    Args:
        groups: [N] group key of each item.
        folds: number of folds k (>= 2).
        seed: shuffling seed.

    Returns:
        [N] fold index of each item.
    """
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    unique = list(dict.fromkeys(groups))
    if len(unique) < folds:
        raise ValueError(f"{len(unique)} groups cannot fill {folds} folds")
    sizes = {g: 0 for g in unique}
    for g in groups:
        sizes[g] += 1
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    order.sort(key=lambda g: -sizes[g])
    load = [0] * folds
    fold_of: dict[str, int] = {}
    for g in order:
        fold = min(range(folds), key=lambda f: load[f])
        fold_of[g] = fold
        load[fold] += sizes[g]
    return [fold_of[g] for g in groups]
