"""Quality assessment (MOS regression) metrics: SRCC, KRCC, PLCC and the VQEG logistic fit.

The quality-assessment literature (YT-NTU-AVQ, LIVE-SJTU, KoNViD, ...) reports rank and linear
correlations between predicted scores and mean opinion scores (MOS):

- ``SRCC``, ``KRCC``: ``scipy.stats.spearmanr`` / ``kendalltau`` (tau-b, ties handled) on the raw
  predictions; invariant to any monotone mapping of the predictions.
- ``PLCC``: ``scipy.stats.pearsonr`` on the raw predictions.
- ``PLCC_logistic``, ``RMSE_logistic``: VQEG practice (VQEG FR-TV Phase I final report; ITU-T
  P.1401) fits a monotone four-parameter logistic from prediction to MOS first and scores the
  fitted values, so a model is not penalised for a nonlinear but monotone scale.
  Reported under their own names; a table must say which PLCC it shows.

The logistic is ``f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``, fitted with
``scipy.optimize.curve_fit`` from ``(max(mos), min(mos), mean(pred), std(pred) / 4)`` (the
initial guess of pyiqa's ``fit_curve``; many VQA repositories use the same) with an analytic
Jacobian, on the test set itself, as is the practice. ``b1 < b2`` is allowed, so a prediction
that runs against the MOS gets a decreasing curve and a *positive* ``PLCC_logistic``: read it
beside SRCC. If the fit fails (no convergence, 4 items or fewer, a constant prediction) the
fitted values fall back to a least-squares line, and a warning is logged.

K-fold protocols (YT-NTU-AVQ, LIVE-SJTU) report the mean and standard deviation over folds:
:func:`fold_summary`.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
import torch
from scipy import optimize, stats
from torch import Tensor
from torchmetrics import Metric

from avpretrain.metrics._arrays import state_numpy, state_rows, to_numpy

log = logging.getLogger(__name__)

METRIC_NAMES = ("SRCC", "PLCC", "KRCC", "PLCC_logistic", "RMSE_logistic")


def _pair(pred: Any, mos: Any) -> tuple[np.ndarray, np.ndarray]:
    """Flatten and check a prediction / MOS pair: same length, at least 2, finite."""
    p = to_numpy(pred, "pred").astype(np.float64).ravel()
    m = to_numpy(mos, "mos").astype(np.float64).ravel()
    if p.shape != m.shape:
        raise ValueError(f"pred has {p.size} values but mos has {m.size}")
    if p.size < 2:
        raise ValueError(f"need at least 2 scored items, got {p.size}")
    if not (np.isfinite(p).all() and np.isfinite(m).all()):
        raise ValueError("pred or mos contains NaN or infinity")
    return p, m


def _nan_if_constant(p: np.ndarray, m: np.ndarray, name: str) -> bool:
    # scipy warns and returns NaN for a constant input; say so once in our own words
    if np.ptp(p) == 0 or np.ptp(m) == 0:
        log.warning(
            "%s: constant %s, correlation undefined (NaN)",
            name,
            "pred" if np.ptp(p) == 0 else "mos",
        )
        return True
    return False


def srcc(pred: Any, mos: Any) -> float:
    """Spearman rank correlation (``scipy.stats.spearmanr``; ties get average ranks).

    Args:
        pred: [N] predicted scores.
        mos: [N] mean opinion scores.
    """
    p, m = _pair(pred, mos)
    if _nan_if_constant(p, m, "SRCC"):
        return math.nan
    return float(stats.spearmanr(p, m).statistic)


def krcc(pred: Any, mos: Any) -> float:
    """Kendall rank correlation, tau-b (``scipy.stats.kendalltau``; corrected for ties).

    Args:
        pred: [N] predicted scores.
        mos: [N] mean opinion scores.
    """
    p, m = _pair(pred, mos)
    if _nan_if_constant(p, m, "KRCC"):
        return math.nan
    return float(stats.kendalltau(p, m).statistic)


def plcc(pred: Any, mos: Any) -> float:
    """Pearson linear correlation on the raw predictions (``scipy.stats.pearsonr``).

    Args:
        pred: [N] predicted scores.
        mos: [N] mean opinion scores.
    """
    p, m = _pair(pred, mos)
    if _nan_if_constant(p, m, "PLCC"):
        return math.nan
    return float(stats.pearsonr(p, m).statistic)


def logistic4(x: Any, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG four-parameter logistic ``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2``.

    ``b1`` and ``b2`` are the upper and lower asymptotes, ``b3`` the midpoint and ``|b4|`` the
    scale; the absolute value keeps the curve increasing whatever sign the optimiser tries.

    Args:
        x: [N] predicted scores.
        b1: upper asymptote.
        b2: lower asymptote.
        b3: midpoint.
        b4: scale (its absolute value is used).
    """
    x = np.asarray(x, dtype=np.float64)
    # clip the exponent: exp overflows past ~709 and the curve is flat there anyway
    z = np.clip(-(x - b3) / max(abs(b4), 1e-12), -500.0, 500.0)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def _logistic4_jac(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """[N, 4] analytic Jacobian of :func:`logistic4`.

    curve_fit's finite differences step relative to each parameter's size, so a midpoint guess
    near 0 (zero-mean predictions) got a ~1e-24 step, a zero derivative, and never moved.
    """
    a = max(abs(b4), 1e-12)
    s = 1.0 / (1.0 + np.exp(np.clip(-(x - b3) / a, -500.0, 500.0)))
    ds = (b1 - b2) * s * (1.0 - s)
    return np.stack([s, 1.0 - s, -ds / a, -ds * (x - b3) / a**2 * np.sign(b4)], axis=1)


def fit_logistic(pred: Any, mos: Any, maxfev: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Fit :func:`logistic4` from predictions to MOS.

    Args:
        pred: [N] predicted scores.
        mos: [N] mean opinion scores.
        maxfev: most function evaluations ``curve_fit`` may spend.

    Returns:
        ``(fitted, params)``: [N] fitted MOS values and the [4] parameters ``b1..b4``; if the fit
        fails, a least-squares line's values and NaN parameters (a warning is logged).
    """
    p, m = _pair(pred, mos)
    if p.size > 4 and np.ptp(p) > 0:
        p0 = [m.max(), m.min(), p.mean(), p.std() / 4]
        try:
            with warnings.catch_warnings():
                # "covariance could not be estimated": harmless here, only the curve is used
                warnings.simplefilter("ignore", optimize.OptimizeWarning)
                params, _ = optimize.curve_fit(
                    logistic4, p, m, p0=p0, jac=_logistic4_jac, maxfev=maxfev
                )
            fitted = logistic4(p, *params)
            if np.isfinite(fitted).all():
                return fitted, np.asarray(params, dtype=np.float64)
            log.warning("logistic fit gave non-finite values; falling back to a linear fit")
        except RuntimeError as err:
            log.warning("logistic fit failed (%s); falling back to a linear fit", err)
    else:
        log.warning("logistic fit needs > 4 items and non-constant pred; falling back to linear")
    if np.ptp(p) == 0:
        return np.full_like(m, m.mean()), np.full(4, np.nan)
    slope, intercept = np.polyfit(p, m, 1)
    return slope * p + intercept, np.full(4, np.nan)


def quality_metrics(pred: Any, mos: Any) -> dict[str, float]:
    """SRCC, PLCC and KRCC on the raw predictions plus PLCC and RMSE after the logistic fit.

    Args:
        pred: [N] predicted scores.
        mos: [N] mean opinion scores.

    Returns:
        ``{"SRCC", "PLCC", "KRCC", "PLCC_logistic", "RMSE_logistic"}`` (RMSE in MOS units).
    """
    p, m = _pair(pred, mos)
    fitted, _ = fit_logistic(p, m)
    return {
        "SRCC": srcc(p, m),
        "PLCC": plcc(p, m),
        "KRCC": krcc(p, m),
        "PLCC_logistic": plcc(fitted, m),
        "RMSE_logistic": float(np.sqrt(np.mean((fitted - m) ** 2))),
    }


def fold_summary(folds: list[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation of each metric over folds (k-fold protocols).

    The standard deviation is the population one (``ddof=0``), as ``np.std`` in the VQA
    repositories that report "mean (std)" over splits.

    Args:
        folds: one metrics dict per fold (same keys).

    Returns:
        ``{"<name>_mean": ..., "<name>_std": ...}`` per metric, plus ``"folds"``.
    """
    if not folds:
        raise ValueError("fold_summary: no folds given")
    keys = list(folds[0])
    for i, fold in enumerate(folds):
        if list(fold) != keys:
            raise ValueError(f"fold {i} has metrics {sorted(fold)}, fold 0 has {sorted(keys)}")
    out: dict[str, float] = {}
    for key in keys:
        values = np.array([fold[key] for fold in folds], dtype=np.float64)
        out[f"{key}_mean"] = float(values.mean())
        out[f"{key}_std"] = float(values.std())
    out["folds"] = float(len(folds))
    return out


class QualityMetrics(Metric):
    """Collects predictions and MOS over an epoch and scores the whole set at once.

    Correlations are not averages of per-batch correlations, so ``compute`` runs once on
    everything collected; both are ``cat`` states, so under DDP that is every rank's clips.

    Args:
        **kwargs: ``torchmetrics.Metric`` options (e.g. ``sync_on_compute``).
    """

    full_state_update = False
    pred: list[Tensor]
    mos: list[Tensor]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("pred", default=[], dist_reduce_fx="cat")
        self.add_state("mos", default=[], dist_reduce_fx="cat")

    def update(self, pred: Any, mos: Any) -> None:
        """Add a batch.

        Args:
            pred: [B] (or [B, 1]) predicted scores.
            mos: [B] (or [B, 1]) mean opinion scores.
        """
        p = to_numpy(pred, "pred", (1, 2)).astype(np.float64).ravel()
        m = to_numpy(mos, "mos", (1, 2)).astype(np.float64).ravel()
        if p.shape != m.shape:
            raise ValueError(f"pred {p.shape} and mos {m.shape} differ in size")
        self.pred.append(torch.as_tensor(p, device=self.device))
        self.mos.append(torch.as_tensor(m, device=self.device))

    def compute(self) -> dict[str, float]:
        """:func:`quality_metrics` over all updates since the last reset."""
        if not state_rows(self.pred):
            raise ValueError("QualityMetrics.compute: no update since reset")
        return quality_metrics(state_numpy(self.pred), state_numpy(self.mos))
