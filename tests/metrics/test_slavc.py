"""SLAVC extended localization protocol against hand-worked precision, AP and F1."""

import numpy as np
import pytest
import torch

from avpretrain.metrics.slavc import (
    SLAVCMetrics,
    slavc_average_precision,
    slavc_f1_curve,
    slavc_metrics,
    slavc_precision_recall,
    slavc_sample,
)

NAN = float("nan")
# two non-sounding pairs (no box, ciou NaN), three sounding: ciou .72 and .62 hit, .32 misses
CONF = [0.9, 0.8, 0.7, 0.6, 0.4]
CIOUS = [0.72, NAN, 0.32, 0.62, NAN]
HAS_GT = [1, 0, 1, 1, 0]


def test_precision_recall_rules():
    # t = .75: sample 0 TP, sample 1 (no box) FP, samples 2 and 3 FN, sample 4 nothing
    assert slavc_precision_recall(CONF, CIOUS, HAS_GT, 0.75) == pytest.approx((0.5, 1 / 3))
    # t = .65: sample 2 (box, ciou < .5) becomes an FP
    assert slavc_precision_recall(CONF, CIOUS, HAS_GT, 0.65) == pytest.approx((1 / 3, 0.5))
    # nothing detected: precision 0 / 0 = 1, recall 0
    assert slavc_precision_recall(CONF, CIOUS, HAS_GT, 0.95) == (1.0, 0.0)
    # stricter IoU turns the .62 hit into an FP
    assert slavc_precision_recall(CONF, CIOUS, HAS_GT, 0.0, 0.7) == pytest.approx((0.2, 1.0))


def test_precision_recall_all_silent():
    # no box anywhere: recall is 0 / 0 = 1; nothing detected: precision also 1
    assert slavc_precision_recall([0.9, 0.1], [NAN, NAN], [0, 0], 0.5) == (0.0, 1.0)
    assert slavc_precision_recall([0.9, 0.1], [NAN, NAN], [0, 0], 0.95) == (1.0, 1.0)


def test_metrics_hand_worked():
    out = slavc_metrics(CONF, CIOUS, HAS_GT)
    # every sample predicted: TP 2 (.72, .62), FP 3 (two silent, .32)
    assert out["precision"] == pytest.approx(0.4)
    assert out["recall"] == 1.0
    # thresholds [.8, .7, .6, .4]: P [.5, 1/3, .5, .4], R [1/3, .5, 1, 1]
    # pmax [.5, .5, .5, .4]; AP = .5 * (1/6) + .5 * (1/2) + .5 * 0
    assert out["AP"] == pytest.approx(1 / 3)
    # F1 at [.4, .6, .7, .8, .9]: 4/7, 2/3, .4, .4, .5
    thresholds, f1s = slavc_f1_curve(CONF, CIOUS, HAS_GT)
    assert thresholds == pytest.approx([0.4, 0.6, 0.7, 0.8, 0.9])
    assert f1s == pytest.approx([4 / 7, 2 / 3, 0.4, 0.4, 0.5])
    assert out["F1"] == pytest.approx(2 / 3)
    # visible cious .72, .32, .62; success 1 (7 thresholds), 2/3 (6), 1/3 (2), 0 (6)
    assert out["AUC"] == pytest.approx(0.05 * (7 + 4 + 2 / 3 - 0.5))
    assert out["cIoU"] == pytest.approx(2 / 3)


def test_ap_has_no_recall_zero_anchor():
    # perfect ranking, but the recall reached at the second-largest confidence is not counted
    ap = slavc_average_precision([0.9, 0.8, 0.7, 0.2], [0.9, 0.9, 0.9, NAN], [1, 1, 1, 0])
    assert ap == pytest.approx(1 / 3)
    assert slavc_average_precision([0.9, 0.8], [0.9, 0.9], [1, 1]) == 0.0  # one threshold


def test_metrics_all_silent():
    out = slavc_metrics([0.9, 0.1], [NAN, NAN], [0, 0])
    assert out["precision"] == 0.0 and out["recall"] == 1.0
    assert out["AP"] == 0.0 and out["F1"] == 0.0
    assert np.isnan(out["AUC"]) and np.isnan(out["cIoU"])


def test_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="equal"):
        slavc_metrics([0.5], [0.5, 0.5], [1])


def test_sample_fixed_normalisation_and_top_quarter_confidence():
    tau = 0.03
    cos = np.linspace(-0.95, 0.55, 16).reshape(4, 4)
    gt = np.zeros((4, 4))
    gt[3] = 1  # the largest cosines are in the last row
    conf, c = slavc_sample(cos / tau, gt, tau=tau, size=4)  # same size: bicubic is the identity
    scores = (np.sort(cos.ravel()) + 1) / 2
    assert conf == pytest.approx(scores[-4:].mean(), abs=1e-6)
    # prediction scores >= .5 <=> cos >= 0: the 6 values 0.05..0.55, 2 outside the last row
    assert c == pytest.approx(4 / (4 + 2))


def test_sample_confidence_rounds_quarter_up():
    # 9 pixels: -9 // 4 = -3 keeps the top 3
    cos = np.linspace(-0.8, 0.8, 9).reshape(3, 3)
    conf, _ = slavc_sample(cos, np.zeros((3, 3)), tau=1.0, size=3)
    assert conf == pytest.approx(((cos.ravel()[-3:] + 1) / 2).mean(), abs=1e-6)


def test_accumulator_end_to_end():
    metric = SLAVCMetrics(tau=1.0)
    heat = np.full((2, 4, 4), -0.5)
    heat[0, :2] = 0.8  # sounding: confident and on the box
    gt = np.zeros((2, 4, 4))
    gt[0, :2] = 1
    metric.update(heat, gt)  # has_gt from the maps
    assert torch.cat(metric.has_gt).tolist() == [1.0, 0.0]
    assert torch.cat(metric.cious)[0] == 1.0
    out = metric.compute()
    assert out["precision"] == 0.5  # the silent pair is an FP at threshold -1000
    assert out["cIoU"] == 1.0
