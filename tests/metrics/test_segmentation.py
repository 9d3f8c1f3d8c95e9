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
    # frames in two batches, the second video's between the first's
    metric.update(np.stack([PROBS[0], gt[0].astype(float)]), gt[[0, 0]], ["v0", "v1"])
    metric.update(np.stack([gt[1].astype(float), PROBS[0]]), gt[[1, 1]], ["v1", "v0"])
    out = metric.compute()
    # video 0, frame 0: pred {0, 1} vs gt {0, 2} -> 1/3; frame 1 (empty gt): TN 2 of 4
    v0_iou = (1 / 3 + 0.5) / 2
    assert out["mIoU"] == pytest.approx((v0_iou + 1.0) / 2, rel=1e-6)
    assert out["F"] == pytest.approx((0.8125 + 1.0) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="2 video ids for 1 frames"):
        metric.update(PROBS, gt[:1], ["a", "b"])


def _official_mask_iou(logits: torch.Tensor, gt: torch.Tensor, eps: float = 1e-7) -> float:
    """AVSBench ``mask_iou`` for one video's frames [N, H, W], transcribed."""
    n = logits.size(0)
    pred = (torch.sigmoid(logits) > 0.5).int()
    num_pixels = pred.size(-1) * pred.size(-2)
    no_obj_flag = gt.sum(dim=(1, 2)) == 0
    inter = (pred * gt).sum(dim=(1, 2))
    union = torch.max(pred, gt).sum(dim=(1, 2))
    inter_no_obj = ((1 - gt) * (1 - pred)).sum(dim=(1, 2))
    inter[no_obj_flag] = inter_no_obj[no_obj_flag]
    union[no_obj_flag] = num_pixels
    return float(torch.sum(inter / (union + eps)) / n)


def _official_fmeasure(logits: torch.Tensor, gt: torch.Tensor) -> float:
    """AVSBench ``Eval_Fmeasure`` for one video's frames [N, H, W], transcribed."""
    pred = torch.sigmoid(logits)
    avg_f, img_num, score = 0.0, 0, torch.zeros(255)
    for img_id in range(pred.size(0)):
        if torch.mean(gt[img_id]) == 0.0:
            continue
        avg_f += _official_curve(pred[img_id], gt[img_id])
        img_num += 1
        score = avg_f / img_num
    return score.max().item()


def test_frames_grouped_by_video_match_the_official_per_video_loop():
    gen = torch.Generator().manual_seed(3)
    # 3 videos of 5 frames (a test-batch-1 call each in test.py): video 1 has two empty
    # frames, video 2 only empty ones (its F is 0 and still counts)
    logits = torch.randn(3, 5, 12, 12, generator=gen) * 2
    gt = (torch.rand(3, 5, 12, 12, generator=gen) > 0.6).float()  # as AVSBench loads masks
    gt[1, [1, 3]] = 0
    gt[2] = 0
    logits[2, :2] = -5  # two frames predicted empty on empty ground truth: IoU near 1
    miou = np.mean([_official_mask_iou(logits[v], gt[v]) for v in range(3)])
    fscore = np.mean([_official_fmeasure(logits[v], gt[v]) for v in range(3)])
    # frames arrive shuffled over batches of 4, as a shuffled loader with one frame per clip
    order = torch.randperm(15, generator=gen)
    frames, masks = logits.reshape(15, 12, 12)[order], gt.reshape(15, 12, 12)[order]
    videos = [f"video{int(i) // 5}" for i in order]
    metric = SegmentationMetrics(from_logits=True)
    for start in range(0, 15, 4):
        stop = start + 4
        metric.update(frames[start:stop], masks[start:stop], videos[start:stop])
    out = metric.compute()
    assert out["mIoU"] == pytest.approx(miou, rel=1e-5)
    assert out["F"] == pytest.approx(fscore, rel=1e-5)
    # per-frame scoring (each frame its own video) gives a different F here
    alone = SegmentationMetrics(from_logits=True)
    alone.update(frames, masks, [str(i) for i in range(15)])
    assert abs(alone.compute()["F"] - fscore) > 1e-3
