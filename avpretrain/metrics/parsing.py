"""Audio-visual video parsing metrics (LLP) as the official evaluation computes them.

Follows YapengTian/AVVP-ECCV20 ``utils/eval_metrics.py`` (``segment_level``, ``event_level``,
``extract_event``, ``event_wise_metric``) as called by ``main_avvp.py:eval`` (test batch size 1,
one video per call, per-video F averaged over videos with ``np.mean``). Quirks reproduced:

- Predictions: video-level ``global_prob >= 0.5``; segment-level ``frame_prob >= 0.5`` multiplied
  by the video-level prediction of the same class (a class absent at video level is never
  predicted in any segment). Both thresholds are inclusive. See :func:`predictions_from_probs`.
- Audio-visual = audio AND visual, for the predictions and for the ground truth alike.
- Per video and per modality, TP / FP / FN are counted per class; a class with none of them
  (absent from both prediction and ground truth) is *skipped*, and F = 2TP / (2TP + FN + FP) is
  averaged over the remaining classes. A video where every class is skipped scores 1.0 ("all
  true negatives") - so a video without any audio-visual event, correctly predicted as such,
  counts as perfect, not as undefined.
- Events are maximal runs of 1s per class. A predicted event is a TP if *any* ground-truth event
  of its class has IoU >= 0.5 (``inter >= 0.5 * union``, inclusive), else an FP; a ground-truth
  event is an FN if no predicted event reaches IoU 0.5 with it. The rule asks for *any* match,
  not a one-to-one assignment (with disjoint runs and IoU >= 0.5 the two happen to coincide).
- Event@AV sums the per-class TP, FP and FN of audio and visual (not audio-visual) before the F;
  Type@AV is the mean of the audio, visual and audio-visual F. The official script takes both from
  the means over videos; both are linear, so the per-video values here average to the same.
- Ground truth from the dense annotation rows is ``GT[class, int(onset):int(offset)] = 1``
  (:func:`segments_to_matrix`): rows with onset == offset mark nothing, overlapping rows merge.

The official code hard-codes 25 classes and 10 segments; here any [C, T] works. Values are
fractions in [0, 1] (the official script prints them x 100).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from avpretrain.metrics._arrays import check_binary, state_numpy, state_rows, to_numpy

LEVELS = ("segment", "event")
KINDS = ("audio", "visual", "av", "type@av", "event@av")
SCORE_KEYS = tuple(f"{level}/{kind}" for level in LEVELS for kind in KINDS)


def segments_to_matrix(
    segments: Iterable[Sequence[Any]], num_classes: int = 25, num_segments: int = 10
) -> np.ndarray:
    """Ground-truth matrix from ``[class, onset, offset]`` rows, as ``main_avvp.py`` builds it.

    Args:
        segments: rows ``[class index, onset, offset]`` in whole segments (seconds in LLP).
        num_classes: C.
        num_segments: T.

    Returns:
        [C, T] int64 0/1 matrix; ``onset`` and ``offset`` are truncated by ``int``.
    """
    gt = np.zeros((num_classes, num_segments), dtype=np.int64)
    for row in segments:
        cls, onset, offset = row
        if not 0 <= int(cls) < num_classes:
            raise ValueError(f"segment {list(row)}: class outside [0, {num_classes})")
        gt[int(cls), int(onset) : int(offset)] = 1
    return gt


def extract_events(seq: Any) -> list[tuple[int, int]]:
    """Maximal runs of 1s (official ``extract_event``).

    Args:
        seq: [T] 0/1 values.

    Returns:
        ``(start, end)`` pairs, end exclusive, in time order.
    """
    on = np.r_[0, (np.asarray(seq) == 1).astype(np.int8), 0]
    edges = np.diff(on)
    starts, ends = np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()
    return list(zip(starts, ends, strict=True))


def _match(a: tuple[int, int], b: tuple[int, int], iou: float) -> bool:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter >= iou * union


def event_counts(pred_seq: Any, gt_seq: Any, iou: float = 0.5) -> tuple[int, int, int]:
    """TP, FP, FN of one class's events (official ``event_wise_metric``).

    Args:
        pred_seq: [T] predicted 0/1 segments.
        gt_seq: [T] ground-truth 0/1 segments.
        iou: minimum IoU for a match (inclusive).

    Returns:
        TP (predicted events matching some ground-truth event), FP (the other predicted events),
        FN (ground-truth events matched by no prediction).
    """
    pred, gt = extract_events(pred_seq), extract_events(gt_seq)
    hits = np.array([[_match(p, g, iou) for g in gt] for p in pred], dtype=bool).reshape(
        len(pred), len(gt)
    )
    tp = int(hits.any(axis=1).sum())
    fn = int((~hits.any(axis=0)).sum())
    return tp, len(pred) - tp, fn


def _mean_f(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    """Mean per-class F over classes with any TP, FP or FN; 1.0 when there is none."""
    active = (tp + fp != 0) | (tp + fn != 0)
    if not active.any():
        return 1.0
    tp, fp, fn = tp[active], fp[active], fn[active]
    return float(np.mean(2 * tp / (2 * tp + fn + fp)))


def _segment_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, ...]:
    return (
        np.sum(pred * gt, axis=1),
        np.sum(pred * (1 - gt), axis=1),
        np.sum((1 - pred) * gt, axis=1),
    )


def _event_counts(pred: np.ndarray, gt: np.ndarray, iou: float) -> tuple[np.ndarray, ...]:
    counts = np.array([event_counts(p, g, iou) for p, g in zip(pred, gt, strict=True)])
    return counts[:, 0], counts[:, 1], counts[:, 2]


def _pair(pred: Any, gt: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    p = to_numpy(pred, f"{name}_pred", 2)
    g = to_numpy(gt, f"{name}_gt", 2)
    if p.shape != g.shape:
        raise ValueError(f"{name}: prediction {p.shape} and ground truth {g.shape} differ")
    check_binary(p, f"{name}_pred")
    check_binary(g, f"{name}_gt")
    return p.astype(np.int64), g.astype(np.int64)


def segment_level_f(pred: Any, gt: Any) -> float:
    """Segment-level F of one video and modality.

    Args:
        pred: [C, T] predicted 0/1 segments.
        gt: [C, T] ground-truth 0/1 segments.

    Returns:
        Mean per-class F over classes with any TP, FP or FN; 1.0 when there is none.
    """
    p, g = _pair(pred, gt, "segment")
    return _mean_f(*_segment_counts(p, g))


def event_level_f(pred: Any, gt: Any, iou: float = 0.5) -> float:
    """Event-level F of one video and modality.

    Args:
        pred: [C, T] predicted 0/1 segments.
        gt: [C, T] ground-truth 0/1 segments.
        iou: minimum IoU for an event match (inclusive).

    Returns:
        Mean per-class F over classes with any TP, FP or FN; 1.0 when there is none.
    """
    p, g = _pair(pred, gt, "event")
    return _mean_f(*_event_counts(p, g, iou))


def parsing_metrics(
    audio_pred: Any, visual_pred: Any, audio_gt: Any, visual_gt: Any, iou: float = 0.5
) -> dict[str, float]:
    """All LLP scores of one video.

    Args:
        audio_pred: [C, T] predicted audio events (0/1).
        visual_pred: [C, T] predicted visual events.
        audio_gt: [C, T] ground-truth audio events.
        visual_gt: [C, T] ground-truth visual events.
        iou: event-level match threshold.

    Returns:
        ``"{level}/{kind}"`` for level in ``segment``, ``event`` and kind in ``audio``,
        ``visual``, ``av`` (audio-visual), ``type@av`` and ``event@av``.
    """
    ap, ag = _pair(audio_pred, audio_gt, "audio")
    vp, vg = _pair(visual_pred, visual_gt, "visual")
    if ap.shape != vp.shape:
        raise ValueError(f"audio {ap.shape} and visual {vp.shape} shapes differ")
    out = {}
    for level in LEVELS:
        count = _segment_counts if level == "segment" else lambda p, g: _event_counts(p, g, iou)
        ca, cv, cav = count(ap, ag), count(vp, vg), count(ap * vp, ag * vg)
        f = {"audio": _mean_f(*ca), "visual": _mean_f(*cv), "av": _mean_f(*cav)}
        f["type@av"] = (f["audio"] + f["visual"] + f["av"]) / 3
        f["event@av"] = _mean_f(*(a + v for a, v in zip(ca, cv, strict=True)))
        out.update({f"{level}/{kind}": f[kind] for kind in KINDS})
    return out


def predictions_from_probs(
    global_prob: Any, frame_prob: Any, threshold: float = 0.5
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Official thresholding: segment probabilities masked by the video-level prediction.

    Args:
        global_prob: [C] video-level probabilities.
        frame_prob: [T, C] segment probabilities of one modality, or [2, T, C] audio then visual
            (MMIL_Net's ``frame_prob[b]`` is [T, 2, C]: pass ``frame_prob[b].transpose(0, 1)``).
        threshold: inclusive threshold for both levels.

    Returns:
        [C, T] int64 0/1 predictions, or an (audio, visual) pair of them for [2, T, C] input.
    """
    video = (to_numpy(global_prob, "global_prob", 1) >= threshold).astype(np.int64)
    frames = to_numpy(frame_prob, "frame_prob", (2, 3))
    if frames.shape[-1] != video.shape[0] or (frames.ndim == 3 and frames.shape[0] != 2):
        raise ValueError(
            f"frame_prob {frames.shape}: expected [T, {video.shape[0]}] or [2, T, {video.shape[0]}]"
        )
    pred = (frames >= threshold).astype(np.int64) * video
    pred = np.swapaxes(pred, -1, -2)
    return pred if pred.ndim == 2 else (pred[0], pred[1])


class ParsingMetrics(Metric):
    """Per-video LLP scores averaged over the videos seen since ``reset``.

    Each video's :func:`parsing_metrics` are computed in ``update`` and kept as a row of a
    ``cat`` state, so under DDP ``compute`` averages over every rank's videos.

    Args:
        iou: event-level match threshold.
        threshold: probability threshold of :meth:`update_from_probs`.
        **kwargs: ``torchmetrics.Metric`` options (e.g. ``sync_on_compute``).
    """

    full_state_update = False
    scores: list[Tensor]

    def __init__(self, iou: float = 0.5, threshold: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.iou = iou
        self.threshold = threshold
        # one row per video, columns in the order of parsing_metrics' keys
        self.add_state("scores", default=[], dist_reduce_fx="cat")

    def update(self, audio_pred: Any, visual_pred: Any, audio_gt: Any, visual_gt: Any) -> None:
        """Score a batch of videos.

        Args:
            audio_pred: [B, C, T] (or one video [C, T]) predicted audio events, 0/1.
            visual_pred: same shape, predicted visual events.
            audio_gt: same shape, ground-truth audio events.
            visual_gt: same shape, ground-truth visual events.
        """
        arrays = [
            to_numpy(x, name, (2, 3))
            for x, name in zip(
                (audio_pred, visual_pred, audio_gt, visual_gt),
                ("audio_pred", "visual_pred", "audio_gt", "visual_gt"),
                strict=True,
            )
        ]
        if arrays[0].ndim == 2:
            arrays = [x[None] for x in arrays]
        rows = []
        for a_pred, v_pred, a_gt, v_gt in zip(*arrays, strict=True):
            video = parsing_metrics(a_pred, v_pred, a_gt, v_gt, iou=self.iou)
            rows.append([video[key] for key in SCORE_KEYS])
        scores = torch.tensor(rows, dtype=torch.float64).reshape(-1, len(SCORE_KEYS))
        self.scores.append(scores.to(self.device))

    def update_from_probs(
        self, global_prob: Any, frame_prob: Any, audio_gt: Any, visual_gt: Any
    ) -> None:
        """Threshold as the official code (:func:`predictions_from_probs`), then :meth:`update`.

        Args:
            global_prob: [B, C] video-level probabilities.
            frame_prob: [B, 2, T, C] segment probabilities, audio then visual.
            audio_gt: [B, C, T] ground-truth audio events.
            visual_gt: [B, C, T] ground-truth visual events.
        """
        g = to_numpy(global_prob, "global_prob", 2)
        f = to_numpy(frame_prob, "frame_prob", 4)
        preds = [
            predictions_from_probs(gv, fv, self.threshold) for gv, fv in zip(g, f, strict=True)
        ]
        self.update(
            np.stack([a for a, _ in preds]), np.stack([v for _, v in preds]), audio_gt, visual_gt
        )

    def compute(self) -> dict[str, float]:
        """Means over videos of every :func:`parsing_metrics` score."""
        if not state_rows(self.scores):
            raise ValueError("ParsingMetrics.compute: no update since reset")
        columns = state_numpy(self.scores).T.tolist()
        return {key: float(np.mean(col)) for key, col in zip(SCORE_KEYS, columns, strict=True)}
