"""Localization metrics (EZ-VSL protocol) against hand-worked maps and cIoUs."""

import numpy as np
import pytest
import torch

from avpretrain.metrics.localization import (
    LocalizationMetrics,
    auc,
    binarize_heatmap,
    ciou,
    flickr_gt_map,
    localization_summary,
    success_auc,
    upsample_heatmap,
    vggss_gt_map,
)


def test_flickr_gt_map_sums_halves_clips():
    gt = flickr_gt_map([[0, 0, 4, 4], [2, 2, 6, 6], [3, 3, 5, 5]], size=8, annotation_size=8)
    assert set(np.unique(gt)) == {0.0, 0.5, 1.0}
    assert gt[0, 0] == 0.5  # one annotator
    assert gt[2, 3] == 1.0  # two annotators
    assert gt[3, 3] == 1.0  # three annotators: 1.5 clipped to 1
    assert gt[5, 5] == 0.5
    assert gt[6, 6] == 0.0  # end coordinate is exclusive
    # pixels under 1 box: 12 (first only) + 9 (second only); under 2: 3 + 3; under 3: 1
    assert gt.sum() == pytest.approx(0.5 * (12 + 9) + 1.0 * (3 + 3) + 1.0 * 1)


def test_flickr_gt_map_scales_from_256_with_truncation():
    gt = flickr_gt_map([[0, 0, 256, 128]])
    assert gt.shape == (224, 224)
    assert gt.sum() == pytest.approx(224 * 112 * 0.5)
    # int(224 * 255 / 256) = int(223.125) = 223
    assert flickr_gt_map([[0, 0, 255, 255]])[222, 222] == 0.5
    assert flickr_gt_map([[0, 0, 255, 255]])[223, 223] == 0.0


def test_vggss_gt_map_union_of_clipped_normalised_boxes():
    gt = vggss_gt_map([[0.1, 0.2, 0.55, 0.5], [-0.2, 0.0, 0.25, 0.3]], size=10)
    # box 1: x 1..5, y 2..5 (12 px); box 2 clipped: x 0..2, y 0..3 (6 px); overlap 1 px
    assert set(np.unique(gt)) == {0.0, 1.0}
    assert gt.sum() == 17
    assert gt[2, 1] == 1.0 and gt[4, 4] == 1.0 and gt[5, 4] == 0.0


def test_binarize_heatmap_keeps_upper_half_at_same_size():
    heat = torch.arange(16.0).reshape(4, 4)
    pred = binarize_heatmap(heat, size=4)
    # threshold sort(x)[8] = 8/15 after normalisation -> the 8 largest values
    np.testing.assert_array_equal(pred, (heat.numpy() >= 8).astype(float))


def test_binarize_heatmap_ties_and_constant_map():
    # sorted [0, 0, 0, 1], threshold index 2 -> 0: every pixel passes
    assert binarize_heatmap(np.array([[0.0, 0.0], [0.0, 1.0]]), size=2).sum() == 4
    assert binarize_heatmap(np.full((3, 3), 7.0), size=3).sum() == 9


def test_binarize_heatmap_bilinear_align_corners():
    heat = np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_allclose(
        upsample_heatmap(heat, size=3), [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]], atol=1e-6
    )
    # sorted values [0, .5, 1, 1, 1.5, 2, 2, 2.5, 3]; index int(9 * 0.5) = 4 -> 1.5
    expected = np.array([[0, 0, 0], [0, 1, 1], [1, 1, 1]], dtype=float)
    np.testing.assert_array_equal(binarize_heatmap(heat, size=3), expected)


def test_ciou_soft_ground_truth():
    gt = np.zeros((4, 4))
    gt[:2, :] = 0.5
    gt[0, 0] = 1.0
    pred = np.zeros((4, 4))
    pred[:2, :2] = 1
    # inter = 1 + 3 * 0.5 = 2.5; sum(gt) = 1 + 7 * 0.5 = 4.5; no prediction outside gt
    assert ciou(pred, gt) == pytest.approx(2.5 / 4.5)
    pred[3, 3] = 1  # a false positive adds a full pixel to the union
    assert ciou(torch.tensor(pred), torch.tensor(gt)) == pytest.approx(2.5 / 5.5)


def test_ciou_edge_cases():
    gt = np.zeros((3, 3))
    gt[1, 1] = 1
    assert ciou(gt, gt) == 1.0
    assert ciou(np.zeros((3, 3)), gt) == 0.0
    assert ciou(1 - gt, gt) == 0.0
    assert np.isnan(ciou(np.zeros((3, 3)), np.zeros((3, 3))))


def test_auc_trapezoid_like_sklearn():
    assert auc([0, 1, 2], [0, 1, 1]) == pytest.approx(1.5)
    assert auc([2, 1, 0], [1, 1, 0]) == pytest.approx(1.5)  # decreasing x is allowed
    with pytest.raises(ValueError, match="neither increasing nor decreasing"):
        auc([0, 2, 1], [0, 1, 1])
    with pytest.raises(ValueError):
        auc([0], [1])


def test_localization_summary_hand_worked():
    out = localization_summary([0.12, 0.52, 0.73, 1.0])
    assert out["cIoU"] == 0.75
    assert out["mean_cIoU"] == pytest.approx(0.5925)
    # success rate: 1 (3 thresholds), .75 (8), .5 (4), .25 (6); trapezoids with dx = .05
    assert out["AUC"] == pytest.approx(0.05 * (3 + 6 + 2 + 1.5 - (1 + 0.25) / 2))
    assert localization_summary([0.5, 0.49])["cIoU"] == 0.5  # >= 0.5 succeeds


def test_success_auc_float_thresholds():
    # 0.05 * 3 == 0.15000000000000002 > 0.15, so a ciou of 0.15 fails the fourth threshold
    assert success_auc(np.array([0.15])) == pytest.approx(0.1 + 0.025)
    assert success_auc(np.array([1.0])) == pytest.approx(1.0)
    assert success_auc(np.array([0.0])) == pytest.approx(0.025)


def test_accumulator_perfect_and_worst():
    metric = LocalizationMetrics()
    heat = np.repeat(np.arange(4.0)[::-1, None], 4, axis=1)  # top rows highest
    gt_top = np.zeros((4, 4))
    gt_top[:2] = 1
    metric.update(np.stack([heat, heat]), np.stack([gt_top, 1 - gt_top]))
    out = metric.compute()
    assert torch.cat(metric.cious).tolist() == [1.0, 0.0]
    assert out["cIoU"] == 0.5
    assert out["AUC"] == pytest.approx(0.05 * (1 + 0.5) / 2 + 0.05 * 0.5 * 19)
    with pytest.raises(ValueError, match="gt_maps"):
        metric.update(np.stack([heat]), np.zeros((1, 4, 5)))
