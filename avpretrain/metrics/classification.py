"""Classification metrics as CAV-MAE computes them (AudioSet mAP, VGGSound top-1 accuracy).

Follows YuanGongND/cav-mae ``src/utilities/stats.py:calculate_stats`` and the mean taken by
``src/traintest_ft.py`` (``mAP = np.mean([stat['AP'] for stat in stats])``), which call
scikit-learn; scikit-learn is not a dependency here, so its definitions are ported:

- ``average_precision`` is ``sklearn.metrics.average_precision_score`` on one class: the step-wise
  (non-interpolated) area ``sum_n (R_n - R_{n-1}) P_n`` over the *distinct* score values taken in
  descending order, with ``R_0 = 0``. Tied scores form one threshold (one precision-recall point),
  so the order of tied samples does not matter.
- A class without positives: scikit-learn >= 1.1 warns "No positive class found in y_true" and
  returns AP 0 (older versions returned NaN). CAV-MAE keeps that class in its ``np.mean``, so by
  default it counts as 0 here too and a warning is logged; ``skip_empty=True`` drops such classes
  from the mean instead (the choice of torchmetrics' macro average). AudioSet's eval set has
  positives for all 527 classes, where the two agree.
- A class whose samples are all positive has AP 1.
- Top-1 accuracy is ``accuracy_score(argmax(target), argmax(output))``: ties in the scores go to
  the first (lowest) class index, and a multi-hot target counts its first positive class only.
- Inputs are the clip scores the caller has already reduced: CAV-MAE averages sigmoid (mAP) or
  softmax (accuracy) outputs over frames and checkpoints before scoring; either monotone squashing
  leaves AP unchanged but averaging after it does not, so average probabilities, not logits.

Values are fractions in [0, 1] (papers print them x 100).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from avpretrain.metrics._arrays import check_binary, state_numpy, state_rows, to_numpy

log = logging.getLogger(__name__)


def average_precision(scores: Any, targets: Any) -> float:
    """Average precision of one binary problem, as ``sklearn.metrics.average_precision_score``.

    Args:
        scores: [N] real scores, higher means more likely positive.
        targets: [N] binary labels (0/1 or bool).

    Returns:
        AP in [0, 1]; 0.0 when there is no positive (scikit-learn >= 1.1).

    Raises:
        ValueError: shapes differ, targets are not binary, or scores are not finite.
    """
    s = to_numpy(scores, "scores", 1).astype(np.float64)
    y = to_numpy(targets, "targets", 1)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and targets {y.shape} differ in shape")
    check_binary(y, "targets")
    if not np.isfinite(s).all():
        raise ValueError("scores: contain NaN or infinity")
    if s.size == 0:
        raise ValueError("scores: empty")
    # Stable descending order as sklearn's _binary_clf_curve; ties are grouped just below.
    order = np.argsort(s, kind="mergesort")[::-1]
    s, y = s[order], y[order].astype(np.float64)
    last_of_value = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(y)[last_of_value]
    fps = 1 + last_of_value - tps
    if tps[-1] == 0:
        return 0.0
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(scores: Any, targets: Any, skip_empty: bool = False) -> float:
    """Mean over classes of :func:`average_precision` (CAV-MAE's mAP).

    Args:
        scores: [N, C] clip scores (probabilities or logits).
        targets: [N, C] multi-hot labels.
        skip_empty: drop classes with no positive sample from the mean instead of counting 0.

    Returns:
        mAP in [0, 1]; NaN if ``skip_empty`` and no class has a positive.
    """
    s = to_numpy(scores, "scores", 2)
    y = to_numpy(targets, "targets", 2)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and targets {y.shape} differ in shape")
    empty = cast(np.ndarray, ~y.astype(bool).any(axis=0))  # [C]: y is 2-D
    if empty.any():
        log.warning(
            "mean_average_precision: %d of %d classes have no positive sample (%s)",
            int(empty.sum()),
            y.shape[1],
            "skipped" if skip_empty else "AP 0, as scikit-learn",
        )
    aps = [average_precision(s[:, k], y[:, k]) for k in range(y.shape[1])]
    if skip_empty:
        aps = [ap for ap, e in zip(aps, empty, strict=True) if not e]
        if not aps:
            return float("nan")
    return float(np.mean(aps))


def top1_accuracy(logits: Any, target: Any) -> float:
    """Fraction of samples whose arg-max class is the target (first index wins ties).

    Args:
        logits: [N, C] scores.
        target: [N] class indices, or [N, C] one-hot / multi-hot (its arg-max is used, as
            CAV-MAE's ``np.argmax(target, 1)``).

    Returns:
        Accuracy in [0, 1].
    """
    s = to_numpy(logits, "logits", 2)
    t = to_numpy(target, "target", (1, 2))
    if t.ndim == 2:
        if t.shape != s.shape:
            raise ValueError(f"logits {s.shape} and target {t.shape} differ in shape")
        t = np.argmax(t, axis=1)
    if t.shape[0] != s.shape[0]:
        raise ValueError(f"logits has {s.shape[0]} rows, target {t.shape[0]}")
    if s.shape[0] == 0:
        raise ValueError("logits: empty")
    return float(np.mean(np.argmax(s, axis=1) == t))


class ClassificationMetrics(Metric):
    """Collects clip scores over an epoch and scores the whole set at once.

    The scores and one-hot targets are ``cat`` states, so under DDP ``compute`` scores every
    rank's clips together (mAP is not an average of per-rank mAPs).

    Args:
        keys: the scores ``compute`` returns: ``acc`` (top-1 accuracy) and / or ``mAP``.
        skip_empty: passed to :func:`mean_average_precision`.
        **kwargs: ``torchmetrics.Metric`` options (e.g. ``sync_on_compute``).
    """

    full_state_update = False
    scores: list[Tensor]
    targets: list[Tensor]

    def __init__(
        self, keys: Sequence[str] = ("acc", "mAP"), skip_empty: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        unknown = set(keys) - {"acc", "mAP"}
        if unknown or not keys:
            raise ValueError(f"keys must be some of ('acc', 'mAP'), got {tuple(keys)}")
        self.keys, self.skip_empty = tuple(keys), skip_empty
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, scores: Any, targets: Any) -> None:
        """Add a batch.

        Args:
            scores: [B, C] clip scores (probabilities averaged over frames, if several).
            targets: [B] class indices or [B, C] multi-hot labels.
        """
        s = torch.as_tensor(to_numpy(scores, "scores", 2), dtype=torch.float64)
        t = torch.as_tensor(to_numpy(targets, "targets", (1, 2))).long()
        if t.ndim == 1:
            t = F.one_hot(t, s.shape[1])
        if t.shape != s.shape:
            raise ValueError(
                f"scores {tuple(s.shape)} and targets {tuple(t.shape)} differ in shape"
            )
        self.scores.append(s.to(self.device))
        self.targets.append(t.to(self.device))

    def compute(self) -> dict[str, float]:
        """The ``keys`` over all updates: ``acc`` top-1 accuracy, ``mAP`` mean average precision."""
        if not state_rows(self.scores):
            raise ValueError("ClassificationMetrics.compute: no update since reset")
        s, t = state_numpy(self.scores), state_numpy(self.targets)
        out = {}
        if "acc" in self.keys:
            out["acc"] = top1_accuracy(s, t)
        if "mAP" in self.keys:
            out["mAP"] = mean_average_precision(s, t, skip_empty=self.skip_empty)
        return out
