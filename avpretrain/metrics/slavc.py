"""SLAVC's extended localization protocol: sounding and non-sounding pairs, confidence, AP, F1.

Follows stoneMo/SLAVC ``test.py:validate`` (map post-processing and confidence) and
``utils.py:EvaluatorFull`` (``update``, ``calc_precision_recall``, ``calc_ap``, ``cal_auc``,
``finalize_stats``). The extended test sets (``*_plus_silent``) add to the test list as many
non-sounding pairs (an image with the audio of another clip) with no box. Quirks reproduced:

- Per sample: the map ``Savl`` (cosine similarity / tau, so in [-1/tau, 1/tau]) is upsampled to
  224 x 224 with ``mode="bicubic", align_corners=True`` (bicubic can overshoot the range) and
  normalised with the *fixed* range: ``scores = (Savl + 1/tau) / (2/tau)``, tau = 0.03. The
  prediction is ``scores >= 0.5`` (absolute threshold, default ``pred_thr``); the confidence is
  ``np.sort(scores.flatten())[-n // 4:].mean()``, the mean of the top quarter of the pixels
  (``-n // 4`` rounds away from zero, so a count not divisible by 4 keeps ``ceil(n / 4)``).
  ciou is :func:`avpretrain.metrics.localization.ciou` against the map (all zeros without box).
- ``slavc_precision_recall`` at a confidence threshold t, per sample: no box and conf >= t -> FP;
  box, conf >= t, ciou >= iou_thr -> TP; box, conf >= t, ciou < iou_thr -> FP; box, conf < t
  -> FN; no box and conf < t -> nothing. Precision or recall of 0 / 0 is 1.
- Reported "Precision" is at t = -1000 (every sample predicted; recall is then 1).
- AP: thresholds ``np.sort(conf)[:-1][::-max(1, N // 200)]`` (descending, starting at the
  *second* largest confidence, about 200 of them); precision made monotone with
  ``max(precision[i:])``; ``AP = sum_i pmax[i] * (recall[i+1] - recall[i])`` - the left point's
  precision, no recall-0 anchor, so recall below the first threshold's is not counted (a
  perfect ranking scores 1 minus the recall at the second-largest confidence). Fewer than 3
  samples give AP 0.
- F1 at the thresholds ``sorted(conf)[::max(1, N // 10)]`` (ascending, from the smallest);
  ``2pr / (p + r)`` or 0; SLAVC prints the list, papers report its maximum (``F1`` here).
- AUC: success-rate AUC (EZ-VSL's) over the samples *with* a box only; NaN if there are none.
- ``finalize_stats`` reports every figure for iou_thr 0.5 and 0.75 and for subsets (all,
  visible = with box, and box-area bins small < 32^2 <= medium < 96^2 <= large < 144^2 <= huge
  pixels, area = ``gt_map.sum()``); to reproduce a subset, filter the arrays and call
  :func:`slavc_metrics` again. Published tables use "all" at iou 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from avpretrain.metrics._arrays import state_numpy, to_numpy
from avpretrain.metrics.localization import check_maps, ciou, success_auc, upsample_heatmap

# SLAVC's "every sample predicted" threshold; confidences are ~[0, 1].
ALL_PREDICTED = -1000.0


def slavc_sample(
    heatmap: Any, gt_map: Any, tau: float = 0.03, pred_threshold: float = 0.5, size: int = 224
) -> tuple[float, float]:
    """Confidence and ciou of one sample (SLAVC ``validate`` with the default absolute threshold).

    Args:
        heatmap: [h, w] map ``Savl`` = cosine similarity / tau (pass tau=1 for raw cosines).
        gt_map: [size, size] ground truth, all zeros for a non-sounding pair.
        tau: the temperature that scaled the map; fixes the normalisation range.
        pred_threshold: absolute threshold on the normalised scores.
        size: side of the evaluation map.

    Returns:
        ``(confidence, ciou)``; ciou is NaN for an empty ground truth with nothing predicted.
    """
    up = upsample_heatmap(heatmap, size, mode="bicubic")
    lo, hi = -1.0 / tau, 1.0 / tau
    scores = (up - lo) / (hi - lo)
    n = scores.size
    conf = float(np.sort(scores.flatten())[-n // 4 :].mean())
    return conf, ciou((scores >= pred_threshold).astype(np.float64), gt_map)


def _as_lists(conf: Any, cious: Any, has_gt: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = to_numpy(conf, "conf_scores", 1).astype(np.float64)
    i = to_numpy(cious, "cious", 1).astype(np.float64)
    g = to_numpy(has_gt, "has_gt", 1).astype(bool)
    if not (len(c) == len(i) == len(g)) or len(c) == 0:
        raise ValueError(
            f"conf_scores, cious, has_gt: need equal non-zero lengths, got "
            f"{len(c)}, {len(i)}, {len(g)}"
        )
    return c, i, g


def slavc_precision_recall(
    conf_scores: Any,
    cious: Any,
    has_gt: Any,
    conf_threshold: float,
    iou_threshold: float = 0.5,
) -> tuple[float, float]:
    """SLAVC ``calc_precision_recall``: precision and recall at one confidence threshold.

    Args:
        conf_scores: [N] confidences.
        cious: [N] ciou per sample (ignored where ``has_gt`` is false; may be NaN there).
        has_gt: [N] whether the sample has a ground-truth box (a sounding object).
        conf_threshold: a sample is predicted as sounding when conf >= this.
        iou_threshold: ciou needed for a true positive.

    Returns:
        ``(precision, recall)``, each 1.0 when its denominator is 0.
    """
    c, i, g = _as_lists(conf_scores, cious, has_gt)
    detected = c >= conf_threshold
    tp = int(np.sum(g & detected & (i >= iou_threshold)))
    fp = int(np.sum(~g & detected)) + int(np.sum(g & detected & ~(i >= iou_threshold)))
    fn = int(np.sum(g & ~detected))
    precision = 1.0 if tp + fp == 0 else tp / (tp + fp)
    recall = 1.0 if tp + fn == 0 else tp / (tp + fn)
    return precision, recall


def slavc_average_precision(
    conf_scores: Any, cious: Any, has_gt: Any, iou_threshold: float = 0.5
) -> float:
    """SLAVC ``calc_ap`` (see the module docstring for its threshold list and sum)."""
    c, i, g = _as_lists(conf_scores, cious, has_gt)
    skip = max(1, len(c) // 200)
    points = [
        slavc_precision_recall(c, i, g, thr, iou_threshold) for thr in np.sort(c)[:-1][::-skip]
    ]
    precision = [p for p, _ in points]
    recall = [r for _, r in points]
    pmax = [np.max(precision[k:]) for k in range(len(precision))]
    return float(sum(pmax[k] * (recall[k + 1] - recall[k]) for k in range(len(pmax) - 1)))


def slavc_f1_curve(
    conf_scores: Any, cious: Any, has_gt: Any, iou_threshold: float = 0.5
) -> tuple[list[float], list[float]]:
    """F1 at SLAVC's decile thresholds ``sorted(conf)[::max(1, N // 10)]``.

    Returns:
        ``(thresholds, f1s)``, both ascending in threshold.
    """
    c, i, g = _as_lists(conf_scores, cious, has_gt)
    thresholds = [float(t) for t in np.sort(c)[:: max(1, len(c) // 10)]]
    f1s = []
    for thr in thresholds:
        p, r = slavc_precision_recall(c, i, g, thr, iou_threshold)
        f1s.append(2 * r * p / (r + p) if r + p > 0 else 0.0)
    return thresholds, f1s


def slavc_metrics(
    conf_scores: Any, cious: Any, has_gt: Any, iou_threshold: float = 0.5
) -> dict[str, float]:
    """SLAVC ``finalize_stats`` for one subset and IoU threshold.

    Args:
        conf_scores: [N] confidences (:func:`slavc_sample`).
        cious: [N] cious; entries without ground truth are ignored.
        has_gt: [N] whether the sample has a box (false for the added non-sounding pairs).
        iou_threshold: ciou needed for a true positive (SLAVC reports 0.5 and 0.75).

    Returns:
        ``precision`` and ``recall`` with every sample predicted, ``AP``, ``F1`` (max over the
        decile thresholds), ``AUC`` and ``cIoU`` (success rate ``ciou >= 0.5`` as EZ-VSL) over the
        samples with a box (NaN without any).
    """
    c, i, g = _as_lists(conf_scores, cious, has_gt)
    precision, recall = slavc_precision_recall(c, i, g, ALL_PREDICTED, iou_threshold)
    visible = i[g]
    return {
        "precision": precision,
        "recall": recall,
        "AP": slavc_average_precision(c, i, g, iou_threshold),
        "F1": max(slavc_f1_curve(c, i, g, iou_threshold)[1]),
        "AUC": success_auc(visible),
        "cIoU": float(np.mean(visible >= 0.5)) if visible.size else float("nan"),
    }


class SLAVCMetrics(Metric):
    """Collects confidence, ciou and has-box per sample over an epoch (SLAVC protocol).

    The per-sample values are computed in ``update`` and kept as ``cat`` states, so
    ``compute`` scores every rank's samples.

    Args:
        tau: temperature of the maps passed to ``update`` (fixes the normalisation).
        pred_threshold: absolute threshold on the normalised scores.
        iou_threshold: ciou needed for a true positive.
        **kwargs: ``torchmetrics.Metric`` options (e.g. ``sync_on_compute``).
    """

    full_state_update = False
    conf: list[Tensor]
    cious: list[Tensor]
    has_gt: list[Tensor]

    def __init__(
        self,
        tau: float = 0.03,
        pred_threshold: float = 0.5,
        iou_threshold: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.tau = tau
        self.pred_threshold = pred_threshold
        self.iou_threshold = iou_threshold
        for name in ("conf", "cious", "has_gt"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, heatmaps: Any, gt_maps: Any, has_gt: Any | None = None) -> None:
        """Score a batch.

        Args:
            heatmaps: [B, h, w] maps ``Savl`` = cosine / tau.
            gt_maps: [B, S, S] ground truth (zeros for non-sounding pairs); the maps are scored
                at its side S.
            has_gt: [B] whether each sample has a box; default ``gt_map.sum() > 0``.
        """
        hm, gt = check_maps(heatmaps, gt_maps)
        flags = (
            gt.reshape(len(gt), -1).sum(1) > 0 if has_gt is None else to_numpy(has_gt, "has_gt", 1)
        )
        if len(flags) != len(gt):
            raise ValueError(f"has_gt has {len(flags)} entries for {len(gt)} maps")
        rows = [
            slavc_sample(h, m, self.tau, self.pred_threshold, gt.shape[-1])
            for h, m in zip(hm, gt, strict=True)
        ]
        conf, cious = ([row[k] for row in rows] for k in (0, 1))
        for name, values in (("conf", conf), ("cious", cious), ("has_gt", flags)):
            values = torch.as_tensor(np.asarray(values, dtype=np.float64), device=self.device)
            getattr(self, name).append(values)

    def compute(self) -> dict[str, float]:
        """:func:`slavc_metrics` over all samples, plus their ``count``."""
        conf, cious, has_gt = (state_numpy(s) for s in (self.conf, self.cious, self.has_gt))
        return {**slavc_metrics(conf, cious, has_gt, self.iou_threshold), "count": float(conf.size)}
