"""Sound source localization metrics (Flickr-SoundNet, VGG-SS) as EZ-VSL computes them.

Follows stoneMo/EZ-VSL ``test.py:validate``, ``utils.py:Evaluator`` (``cal_CIOU``,
``finalize_AP50``, ``finalize_AUC``, ``finalize_cIoU``) and ``utils.py:normalize_img``, and the
ground-truth maps of ``datasets.py:load_all_bboxes`` / ``bbox2gtmap`` (SLAVC's copy of the latter
is the same). Quirks reproduced:

- Prediction: the audio-visual map (e.g. 7 x 7) is upsampled to 224 x 224 with
  ``F.interpolate(mode="bilinear", align_corners=True)``, min-max normalised (a constant map is
  left as is, so every pixel passes the threshold), and binarised at its "median"
  ``thr = sort(map.flatten())[int(H * W * 0.5)]`` with ``map >= thr``: the upper half of the
  pixels, more when values tie at the threshold.
- ``ciou = sum(pred * gt) / (sum(gt) + sum(pred * (gt == 0)))`` with a soft ground truth: pixels
  where gt = 0.5 count half in the intersection and in the union, and a predicted pixel
  inside any box is not a false positive. 0 / 0 (no ground truth and nothing predicted) is NaN.
- The reported "cIoU" (EZ-VSL prints it as ``AP50(cIoU)``) is the success rate
  ``mean(ciou >= 0.5)`` (``>=``: a ciou of exactly 0.5 succeeds); ``mean_cIoU`` is the plain
  mean. AUC is ``sklearn.metrics.auc`` (trapezoids) of the success rate ``mean(ciou >= t)`` at
  the 21 thresholds ``t = 0.05 * i``, i = 0..20, computed in floating point exactly like that
  (``0.05 * 3`` is 0.15000000000000002, so a ciou of 0.15 fails that threshold).
- Flickr ground truth: each annotator's box, given in 256 x 256 pixels, is scaled with
  ``int(224 * v / 256)``; the boxes are summed, halved and clipped to 1 (values 0, 0.5, 1: one
  annotator of two counts half). Box ``[xmin, ymin, xmax, ymax]`` fills
  ``[ymin:ymax, xmin:xmax]`` (end exclusive).
- VGG-SS ground truth: normalised boxes clipped to [0, 1], scaled by 224 and truncated to int,
  union set to 1. EZ-VSL's own ``datasets.py`` calls ``bbox2gtmap`` without its format argument,
  so its printed VGG-SS numbers use the *Flickr* rule (a single box becomes 0.5); to reproduce
  those, pass VGG-SS pixel boxes to :func:`flickr_gt_map` with ``annotation_size=size``.
  SLAVC passes the format and gets the union map of :func:`vggss_gt_map`.

The SLAVC extended protocol (non-sounding pairs, confidence, AP, F1) is in
:mod:`avpretrain.metrics.slavc`. Values are fractions in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from avpretrain.metrics._arrays import state_numpy, to_numpy

AUC_THRESHOLDS = [0.05 * i for i in range(21)]


def flickr_gt_map(
    boxes: Sequence[Sequence[float]], size: int = 224, annotation_size: int = 256
) -> np.ndarray:
    """Soft Flickr-SoundNet ground truth: annotators' boxes summed, halved, clipped to 1.

    Args:
        boxes: [xmin, ymin, xmax, ymax] per annotator (and object), integer pixels of an
            ``annotation_size`` square image (Flickr XML files use 256).
        size: side of the map.
        annotation_size: side the box coordinates refer to; equal to ``size`` for no scaling.

    Returns:
        [size, size] float64 map with values in {0, 0.5, 1}.
    """
    gt = np.zeros((size, size))
    for box in boxes:
        xmin, ymin, xmax, ymax = (int(size * int(v) / annotation_size) for v in box)
        gt[ymin:ymax, xmin:xmax] += 1
    gt = gt / 2
    gt[gt > 1] = 1
    return gt


def vggss_gt_map(boxes: Sequence[Sequence[float]], size: int = 224) -> np.ndarray:
    """Binary VGG-SS ground truth: union of normalised boxes.

    Args:
        boxes: [xmin, ymin, xmax, ymax] per box, in [0, 1] (clipped to it).
        size: side of the map.

    Returns:
        [size, size] float64 map with values in {0, 1}.
    """
    gt = np.zeros((size, size))
    for box in boxes:
        xmin, ymin, xmax, ymax = (np.clip(np.asarray(box, dtype=np.float64), 0, 1) * size).astype(
            int
        )
        gt[ymin:ymax, xmin:xmax] = 1
    return gt


def upsample_heatmap(heatmap: Any, size: int = 224, mode: str = "bilinear") -> np.ndarray:
    """Upsample a [h, w] map to [size, size] with ``align_corners=True`` (float32).

    Args:
        heatmap: [h, w] map.
        size: output side.
        mode: ``"bilinear"`` (EZ-VSL) or ``"bicubic"`` (SLAVC).
    """
    h = torch.as_tensor(to_numpy(heatmap, "heatmap", 2), dtype=torch.float32)[None, None]
    return F.interpolate(h, size=(size, size), mode=mode, align_corners=True)[0, 0].numpy()


def min_max_normalize(x: np.ndarray) -> np.ndarray:
    """EZ-VSL ``normalize_img``: scale to [0, 1]; a constant map is returned unchanged."""
    vmin, vmax = x.min(), x.max()
    return (x - vmin) / (vmax - vmin) if vmax - vmin != 0 else x


def binarize_heatmap(heatmap: Any, size: int = 224, mode: str = "bilinear") -> np.ndarray:
    """EZ-VSL prediction: upsample, min-max normalise, keep pixels >= the median.

    Args:
        heatmap: [h, w] audio-visual similarity map.
        size: side of the evaluation map.
        mode: interpolation mode of the upsampling.

    Returns:
        [size, size] float64 map of 0/1.
    """
    pred = min_max_normalize(upsample_heatmap(heatmap, size, mode))
    thr = np.sort(pred.flatten())[int(pred.shape[0] * pred.shape[1] * 0.5)]
    return (pred >= thr).astype(np.float64)


def ciou(pred_binary: Any, gt: Any) -> float:
    """Consensus IoU of a binary prediction against a soft ground truth (EZ-VSL ``cal_CIOU``).

    Args:
        pred_binary: [H, W] 0/1 prediction.
        gt: [H, W] ground truth with values in [0, 1].

    Returns:
        ``sum(pred * gt) / (sum(gt) + sum(pred * (gt == 0)))``; NaN when that is 0 / 0.
    """
    p = to_numpy(pred_binary, "pred_binary", 2).astype(np.float64)
    g = to_numpy(gt, "gt", 2).astype(np.float64)
    if p.shape != g.shape:
        raise ValueError(f"pred_binary {p.shape} and gt {g.shape} differ in shape")
    denom = np.sum(g) + np.sum(p * (g == 0))
    return float(np.sum(p * g) / denom) if denom != 0 else float("nan")


def auc(x: Sequence[float], y: Sequence[float]) -> float:
    """Trapezoidal area under a curve, as ``sklearn.metrics.auc``.

    Args:
        x: [K] monotonic (increasing or decreasing) abscissae, K >= 2.
        y: [K] ordinates.

    Raises:
        ValueError: fewer than 2 points or ``x`` not monotonic.
    """
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim != 1 or xa.size < 2:
        raise ValueError(f"auc: need two 1-D arrays of >= 2 points, got {xa.shape}, {ya.shape}")
    dx = np.diff(xa)
    direction = 1.0
    if np.any(dx < 0):
        if not np.all(dx <= 0):
            raise ValueError(f"auc: x is neither increasing nor decreasing: {xa}")
        direction = -1.0
    return float(direction * np.trapezoid(ya, xa))


def success_auc(cious: Any) -> float:
    """AUC of the success rate ``mean(ciou >= t)`` over ``t = 0, 0.05, ..., 1``."""
    c = to_numpy(cious, "cious", 1)
    if c.size == 0:
        return float("nan")
    return auc(AUC_THRESHOLDS, [np.sum(c >= t) / len(c) for t in AUC_THRESHOLDS])


def localization_summary(cious: Any) -> dict[str, float]:
    """EZ-VSL's summary of per-sample cIoUs.

    Args:
        cious: [N] per-sample cIoU.

    Returns:
        ``{"cIoU": mean(ciou >= 0.5), "AUC": success-rate AUC, "mean_cIoU": mean(ciou)}``.
    """
    c = to_numpy(cious, "cious", 1).astype(np.float64)
    if c.size == 0:
        raise ValueError("localization_summary: no sample")
    return {
        "cIoU": float(np.mean(c >= 0.5)),
        "AUC": success_auc(c),
        "mean_cIoU": float(np.mean(c)),
    }


def check_maps(heatmaps: Any, gt_maps: Any) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps [B, h, w] and square ground-truth maps [B, S, S] as numpy arrays.

    Raises:
        ValueError: other shapes, or batch sizes that differ.
    """
    hm = to_numpy(heatmaps, "heatmaps", 3)
    gt = to_numpy(gt_maps, "gt_maps", 3)
    if hm.shape[0] != gt.shape[0] or gt.shape[1] != gt.shape[2]:
        raise ValueError(
            f"heatmaps {hm.shape} / gt_maps {gt.shape}: expected [B, h, w] and [B, S, S]"
        )
    return hm, gt


class LocalizationMetrics(Metric):
    """Collects per-sample cIoU over an epoch (EZ-VSL protocol) and summarises them.

    The cIoUs are computed in ``update`` and kept as a ``cat`` state, so ``compute``
    summarises every rank's samples.

    Args:
        mode: upsampling mode of :func:`binarize_heatmap`.
        **kwargs: ``torchmetrics.Metric`` options (e.g. ``sync_on_compute``).
    """

    full_state_update = False
    cious: list[Tensor]

    def __init__(self, mode: str = "bilinear", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        self.add_state("cious", default=[], dist_reduce_fx="cat")

    def update(self, heatmaps: Any, gt_maps: Any) -> None:
        """Score a batch.

        Args:
            heatmaps: [B, h, w] audio-visual maps (any scale; they are min-max normalised).
            gt_maps: [B, S, S] ground truth from :func:`flickr_gt_map` / :func:`vggss_gt_map`;
                the maps are scored at its side S.
        """
        hm, gt = check_maps(heatmaps, gt_maps)
        size = gt.shape[-1]
        cious = [ciou(binarize_heatmap(h, size, self.mode), g) for h, g in zip(hm, gt, strict=True)]
        self.cious.append(torch.tensor(cious, dtype=torch.float64, device=self.device))

    def compute(self) -> dict[str, float]:
        """:func:`localization_summary` of all samples, plus their ``count``.

        Only ``count`` (0) when the updates held no sample (e.g. no clip with a box).
        """
        cious = state_numpy(self.cious)
        summary = localization_summary(cious) if cious.size else {}
        return {**summary, "count": float(cious.size)}
