"""AVSBench mIoU and F-score against hand-worked frames and the official loop."""

import numpy as np
import pytest
import torch

from avpretrain.metrics.segmentation import (
    SegmentationMetrics,
    f_score,
    f_score_curve,
    mask_iou,
)


def test_mask_iou_hand_worked_with_empty_frame():
    pred = np.array([[[1, 1], [0, 0]], [[1, 0], [0, 0]]], dtype=float)
    gt = np.array([[[1, 0], [0, 0]], [[0, 0], [0, 0]]], dtype=float)
    # frame 0: 1 / 2; frame 1 (empty gt): true negatives 3 of 4 pixels
    assert mask_iou(pred, gt) == pytest.approx((0.5 + 0.75) / 2, rel=1e-6)


def test_mask_iou_official_self_test_cases():
    # utility.py __main__: logits 1 -> foreground, logits 0 -> sigmoid 0.5 -> background
    ones, zeros = torch.ones(4, 5, 5), torch.zeros(4, 5, 5)
    assert mask_iou(ones, ones, from_logits=True) == pytest.approx(1.0, rel=1e-6)
    assert mask_iou(zeros, zeros, from_logits=True) == pytest.approx(1.0, rel=1e-6)
    assert mask_iou(zeros, ones, from_logits=True) == 0.0
    assert mask_iou(ones, zeros, from_logits=True) == 0.0
    half = ones.clone()
    half[:2] = 0
    assert mask_iou(ones, half, from_logits=True) == pytest.approx(0.5, rel=1e-6)
    assert mask_iou(1 - half, ones, from_logits=True) == pytest.approx(0.5, rel=1e-6)


def test_mask_iou_strict_threshold_and_binary_target():
    gt = np.ones((1, 2, 2))
    assert mask_iou(np.full((1, 2, 2), 0.5), gt) == 0.0  # 0.5 is background
    assert mask_iou(np.full((1, 2, 2), 0.51), gt) == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(ValueError, match="binary"):
        mask_iou(gt, gt * 0.5)


PROBS = np.array([[[0.9, 0.6, 0.3, 0.1]]])


def test_f_score_single_frame_hand_worked():
    gt = np.array([[[1, 0, 1, 0]]])
    # per threshold band: (0, .1] P .5 R 1; (.1, .3] P 2/3 R 1; (.3, .6] P .5 R .5;
    # (.6, .9] P 1 R .5 -> F = 1.3 * .5 / (.3 + .5) = .8125; above .9 nothing -> 0
    assert f_score(PROBS, gt) == pytest.approx(0.8125, rel=1e-6)
    curve = f_score_curve(PROBS, gt)
    assert curve.shape == (255,)
    assert curve[0] == pytest.approx(0.65 / 1.15, rel=1e-6)
    assert curve[-1] == 0.0


def test_f_score_averages_curves_over_non_empty_frames():
    pred = np.repeat(PROBS, 3, axis=0)
    gt = np.array([[[1, 0, 1, 0]], [[0, 0, 0, 0]], [[0, 1, 0, 0]]])
    # frame 1 is skipped; frame 2's best band (.1, .3] scores (1.3 / 3) / 1.1, frame 0's
    # scores 0.8667 / 1.2 there: the max of the mean curve, not the mean of the maxima
    expected = (1.3 * (2 / 3) / 1.2 + (1.3 / 3) / 1.1) / 2
    assert f_score(pred, gt) == pytest.approx(expected, rel=1e-6)


def test_f_score_empty_video_perfect_worst():
    assert f_score(PROBS, np.zeros((1, 1, 4))) == 0.0
    gt = np.array([[[1, 0, 0, 0]]])
    assert f_score(gt.astype(float), gt) == pytest.approx(1.0, rel=1e-6)
    # worst: threshold 0 still predicts every pixel, P = 1/4, R = 1
    assert f_score(1.0 - gt, gt) == pytest.approx(1.3 * 0.25 / (0.075 + 1), rel=1e-6)


def _official_curve(prob: torch.Tensor, gt: torch.Tensor, num: int = 255) -> torch.Tensor:
    """AVSBench ``_eval_pr`` + ``Eval_Fmeasure`` loop for one frame, transcribed."""
    prec, recall = torch.zeros(num), torch.zeros(num)
    thlist = torch.linspace(0, 1 - 1e-10, num)
    for i in range(num):
        y_temp = (prob >= thlist[i]).float()
        tp = (y_temp * gt).sum()
        prec[i], recall[i] = tp / (y_temp.sum() + 1e-20), tp / (gt.sum() + 1e-20)
    f = 1.3 * prec * recall / (0.3 * prec + recall)
    f[f != f] = 0
    return f


def test_f_score_curve_matches_official_loop():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 16, 16, generator=gen) * 3
    gt = (torch.rand(2, 16, 16, generator=gen) > 0.7).float()
    prob = torch.sigmoid(logits)
    expected = (_official_curve(prob[0], gt[0]) + _official_curve(prob[1], gt[1])) / 2
    np.testing.assert_allclose(f_score_curve(logits, gt, from_logits=True), expected, rtol=1e-6)
    assert f_score(prob, gt) == pytest.approx(f_score(logits, gt, from_logits=True))


def test_accumulator_means_over_videos():
    metric = SegmentationMetrics()
    gt = np.array([[[1, 0, 1, 0]], [[0, 0, 0, 0]]])
    video = np.stack([PROBS[0], PROBS[0]])
    metric.update(np.stack([video, gt.astype(float)]), np.stack([gt, gt]))
    out = metric.compute()
    # video 0, frame 0: pred {0, 1} vs gt {0, 2} -> 1/3; frame 1 (empty gt): TN 2 of 4
    v0_iou = (1 / 3 + 0.5) / 2
    assert out["mIoU"] == pytest.approx((v0_iou + 1.0) / 2, rel=1e-6)
    assert out["F"] == pytest.approx((0.8125 + 1.0) / 2, rel=1e-6)
