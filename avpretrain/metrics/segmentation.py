"""Audio-visual segmentation metrics (AVSBench S4 and MS3) as the official code computes them.

Follows OpenNLPLab/AVSBench ``avs_scripts/avs_s4/utils/utility.py`` (``mask_iou``, ``_eval_pr``,
``Eval_Fmeasure``; the MS3 copy is the same) as called by ``avs_s4/test.py`` and
``avs_ms3/test.py``: test batch size 1, so each call sees the 5 frames of one video, and the
per-call values are averaged over videos (``pyutils.AverageMeter``). Quirks reproduced:

- The official functions take logits and apply ``torch.sigmoid`` first; here ``pred`` is a
  probability (or a 0/1 mask) unless ``from_logits=True``. Computation is float32 as there.
- mIoU: ``pred = sigmoid > 0.5`` (strict: probability 0.5 is background); per frame
  ``inter / (union + 1e-7)``. A frame whose ground truth is empty scores its *true-negative
  fraction*: inter = number of pixels where both are 0, union = H * W (an empty prediction on an
  empty frame scores ~1, a full one 0). Mean over the frames of the call.
- F-score: beta^2 = 0.3; thresholds ``torch.linspace(0, 1 - 1e-10, 255)`` in float32, where the
  last one rounds to exactly 1.0; a pixel is positive when ``prob >= threshold``;
  ``precision = tp / (pred_pos + 1e-20)``, ``recall = tp / (gt_pos + 1e-20)``,
  ``F = (1 + b2) P R / (b2 P + R)`` with NaN (0 / 0) set to 0. Frames with an empty ground
  truth are skipped; the F *curve* is averaged over the remaining frames and its maximum over
  thresholds is the call's (the video's) F - not the mean of per-frame maxima. A video whose
  frames are all empty scores 0 (the zero curve), and still counts in the mean over videos.
- torchmetrics' Jaccard / F-beta pool pixels over the whole set and do not match.

:func:`mask_iou` and :func:`f_score` take the frames of one video. Frames that arrive one per
clip, in any order and batch (AVSBench shards hold one clip per annotated frame), are scored
with :func:`frame_scores` and grouped by video id in :func:`video_means`
(:class:`SegmentationMetrics` does both); the result equals the per-video loop.

Values are fractions in [0, 1].
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from avpretrain.metrics._arrays import check_binary, state_numpy, state_rows, to_numpy


def _frames(pred: Any, target: Any, from_logits: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and binary targets as float32 tensors [N, H, W]."""
    p = torch.as_tensor(to_numpy(pred, "pred", 3), dtype=torch.float32)
    t = to_numpy(target, "target", 3)
    if p.shape != t.shape:
        raise ValueError(f"pred {tuple(p.shape)} and target {t.shape} differ in shape")
    if p.shape[0] == 0:
        raise ValueError("pred: no frame")
    check_binary(t, "target")
    return (torch.sigmoid(p) if from_logits else p), torch.as_tensor(t, dtype=torch.float32)


def mask_iou(pred: Any, target: Any, from_logits: bool = False, eps: float = 1e-7) -> float:
    """AVSBench ``mask_iou``: mean over frames of the IoU of ``pred > 0.5`` with the target.

    Args:
        pred: [N, H, W] probabilities or 0/1 masks (logits with ``from_logits``), the frames of
            one video.
        target: [N, H, W] binary ground truth.
        from_logits: apply a sigmoid to ``pred`` first, as the official code does.
        eps: added to each union.

    Returns:
        Mean IoU over the N frames; an empty-ground-truth frame scores its true-negative fraction.
    """
    prob, t = _frames(pred, target, from_logits)
    p = (prob > 0.5).float()
    no_obj = t.sum((1, 2)) == 0
    inter = (p * t).sum((1, 2))
    union = torch.maximum(p, t).sum((1, 2))
    inter[no_obj] = ((1 - t) * (1 - p)).sum((1, 2))[no_obj]
    union[no_obj] = float(t.shape[1] * t.shape[2])
    return float(torch.sum(inter / (union + eps)) / t.shape[0])


def _count_at_least(values: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """[K] number of ``values >= threshold`` per threshold, as float32."""
    below = torch.searchsorted(torch.sort(values).values, thresholds, side="left")
    return (values.numel() - below).float()


def _pr_curve(
    prob: torch.Tensor, gt: torch.Tensor, thresholds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """AVSBench ``_eval_pr`` for one [H, W] frame; counts by sorted search instead of a loop."""
    flat, pos = prob.flatten(), gt.flatten() > 0
    tp = _count_at_least(flat[pos], thresholds)
    pred_pos = _count_at_least(flat, thresholds)
    return tp / (pred_pos + 1e-20), tp / (pos.sum().float() + 1e-20)


def f_score_curve(
    pred: Any,
    target: Any,
    beta2: float = 0.3,
    num_thresholds: int = 255,
    from_logits: bool = False,
) -> np.ndarray:
    """F-measure per threshold, averaged over the frames with a non-empty ground truth.

    Args:
        pred: [N, H, W] probabilities (logits with ``from_logits``), the frames of one video.
        target: [N, H, W] binary ground truth.
        beta2: beta squared.
        num_thresholds: thresholds ``linspace(0, 1 - 1e-10, num_thresholds)``.
        from_logits: apply a sigmoid first.

    Returns:
        [num_thresholds] float32 curve; zeros if every frame's ground truth is empty.
    """
    prob, t = _frames(pred, target, from_logits)
    thresholds = torch.linspace(0, 1 - 1e-10, num_thresholds)
    total, count = torch.zeros(num_thresholds), 0
    for frame_prob, frame_gt in zip(prob, t, strict=True):
        if torch.mean(frame_gt) == 0.0:
            continue
        prec, recall = _pr_curve(frame_prob, frame_gt, thresholds)
        f = (1 + beta2) * prec * recall / (beta2 * prec + recall)
        f[f != f] = 0
        total += f
        count += 1
    return (total / count if count else total).numpy()


def f_score(
    pred: Any,
    target: Any,
    beta2: float = 0.3,
    num_thresholds: int = 255,
    from_logits: bool = False,
) -> float:
    """AVSBench ``Eval_Fmeasure``: maximum over thresholds of :func:`f_score_curve`.

    Args:
        pred: [N, H, W] probabilities (logits with ``from_logits``), the frames of one video.
        target: [N, H, W] binary ground truth.
        beta2: beta squared (0.3 in AVSBench).
        num_thresholds: number of thresholds (255).
        from_logits: apply a sigmoid first.

    Returns:
        The video's F in [0, 1]; 0.0 if every frame's ground truth is empty.
    """
    return float(f_score_curve(pred, target, beta2, num_thresholds, from_logits).max())


def frame_scores(
    pred: Any, target: Any, from_logits: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each frame's share of its video's scores: its IoU, its F curve, whether F counts it.

    Args:
        pred: [N, H, W] probabilities (logits with ``from_logits``), any frames.
        target: [N, H, W] binary ground truth.
        from_logits: apply a sigmoid first.

    Returns:
        ``iou`` [N] float64 (:func:`mask_iou` of the frame alone), ``curve`` [N, 255] float32
        (:func:`f_score_curve` of the frame alone) and ``scored`` [N] bool (non-empty ground
        truth; the F of a video averages the curves of its scored frames only).
    """
    prob, t = _frames(pred, target, from_logits)
    iou = np.array([mask_iou(p[None], g[None]) for p, g in zip(prob, t, strict=True)])
    curve = np.stack([f_score_curve(p[None], g[None]) for p, g in zip(prob, t, strict=True)])
    return iou, curve, (t.sum((1, 2)) > 0).numpy()


def video_means(video: Sequence[Hashable], iou: Any, curve: Any, scored: Any) -> dict[str, float]:
    """AVSBench's numbers from per-frame scores: each video's mIoU and F, averaged over videos.

    The frames of a video are gathered by ``video`` (any order); a video's mIoU is the mean of
    its frames' IoU (``mask_iou`` on the video's frames), its F the maximum over thresholds of
    the mean curve of its scored frames (``Eval_Fmeasure``; 0 when none is scored).

    Args:
        video: [N] the video of each frame.
        iou: [N] per-frame IoU (from :func:`frame_scores`, as are the next two).
        curve: [N, K] per-frame F curves.
        scored: [N] bool, the frames whose F counts.

    Returns:
        ``{"mIoU", "F"}``: means over videos.
    """
    iou, curve = np.asarray(iou, np.float64), np.asarray(curve, np.float32)
    scored = np.asarray(scored, bool)
    frames: dict[Hashable, list[int]] = {}
    for i, v in enumerate(video):
        frames.setdefault(v, []).append(i)
    if not frames:
        raise ValueError("video_means: no frame")
    ious, fs = [], []
    for rows in frames.values():
        ious.append(iou[rows].mean())
        kept = [i for i in rows if scored[i]]
        fs.append(float(curve[kept].mean(0).max()) if kept else 0.0)
    return {"mIoU": float(np.mean(ious)), "F": float(np.mean(fs))}


def video_number(video_id: Hashable) -> int:
    """A video id as a signed 64-bit number (blake2b of ``str(video_id)``), for a tensor state."""
    digest = hashlib.blake2b(str(video_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class SegmentationMetrics(Metric):
    """Per-video mIoU and F-score over the frames seen since ``reset``, grouped by video.

    Frames may come in any batches and order (AVSBench's converter writes one clip per
    annotated frame); ``compute`` groups them by video id as the official per-video loop does.
    Each frame's scores and its video (as :func:`video_number`) are ``cat`` states, so under DDP
    a video whose frames landed on several ranks is scored whole.

    Args:
        from_logits: ``update`` receives logits (a sigmoid is applied) instead of probabilities.
        **kwargs: ``torchmetrics.Metric`` options (e.g. ``sync_on_compute``).
    """

    full_state_update = False
    video: list[Tensor]
    iou: list[Tensor]
    curve: list[Tensor]
    scored: list[Tensor]

    def __init__(self, from_logits: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.from_logits = from_logits
        for name in ("video", "iou", "curve", "scored"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, pred: Any, target: Any, video_ids: Sequence[Hashable]) -> None:
        """Score a batch of frames.

        Args:
            pred: [N, H, W] probabilities or logits.
            target: [N, H, W] binary ground truth.
            video_ids: [N] the video each frame belongs to.
        """
        iou, curve, scored = frame_scores(pred, target, self.from_logits)
        if len(video_ids) != len(iou):
            raise ValueError(f"{len(video_ids)} video ids for {len(iou)} frames")
        video = [video_number(v) for v in video_ids]
        self.video.append(torch.tensor(video, dtype=torch.long, device=self.device))
        self.iou.append(torch.as_tensor(iou, device=self.device))
        self.curve.append(torch.as_tensor(curve, device=self.device))
        self.scored.append(torch.as_tensor(scored, device=self.device).to(torch.uint8))

    def compute(self) -> dict[str, float]:
        """``{"mIoU", "F"}``: means over videos of the per-video scores."""
        if not state_rows(self.iou):
            raise ValueError("SegmentationMetrics.compute: no update since reset")
        video, iou, curve, scored = (
            state_numpy(s) for s in (self.video, self.iou, self.curve, self.scored)
        )
        return video_means(video.tolist(), iou, curve, scored.astype(bool))
