"""Classification metrics against hand-worked values (sklearn's definitions, CAV-MAE's mean)."""

import logging

import numpy as np
import pytest
import torch

from avpretrain.metrics.classification import (
    ClassificationMetrics,
    average_precision,
    mean_average_precision,
    top1_accuracy,
)


def test_average_precision_hand_worked():
    # P@1 = 1 at R = 0.5, P@3 = 2/3 at R = 1
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_average_precision_groups_ties_into_one_threshold():
    # thresholds 0.9: P 0 R 0; 0.5 (two samples): P 1/3 R 1/2; 0.1: P 1/2 R 1
    expected = 0.5 * (1 / 3) + 0.5 * 0.5
    assert average_precision([0.9, 0.5, 0.5, 0.1], [0, 1, 0, 1]) == pytest.approx(expected)
    # the order of tied samples must not matter
    assert average_precision([0.9, 0.5, 0.5, 0.1], [0, 0, 1, 1]) == pytest.approx(expected)


def test_average_precision_single_positive_perfect_worst():
    assert average_precision([0.2, 0.9, 0.4], [0, 0, 1]) == pytest.approx(0.5)
    assert average_precision([0.4, 0.3, 0.2, 0.1], [1, 1, 0, 0]) == pytest.approx(1.0)
    # worst: positives last -> P@3 = 1/3, P@4 = 1/2
    assert average_precision([0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1]) == pytest.approx(5 / 12)


def test_average_precision_all_positive_and_no_positive():
    assert average_precision([0.3, 0.1, 0.2], [1, 1, 1]) == 1.0
    assert average_precision([0.3, 0.1, 0.2], [0, 0, 0]) == 0.0


def test_average_precision_matches_rank_definition_without_ties():
    # Independent definition: mean over positives of the precision at their rank.
    rng = np.random.default_rng(0)
    scores = rng.permutation(50) / 50.0
    targets = rng.integers(0, 2, 50)
    order = np.argsort(-scores)
    hits = targets[order]
    ranks = np.flatnonzero(hits) + 1
    expected = np.mean(np.cumsum(hits)[ranks - 1] / ranks)
    assert average_precision(torch.tensor(scores), torch.tensor(targets)) == pytest.approx(expected)


def test_average_precision_rejects_bad_input():
    with pytest.raises(ValueError, match="binary"):
        average_precision([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="NaN"):
        average_precision([0.1, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="shape"):
        average_precision([0.1, 0.2, 0.3], [0, 1])


SCORES = np.array([[0.9, 0.1, 0.5], [0.8, 0.2, 0.4], [0.7, 0.3, 0.3], [0.6, 0.4, 0.2]])
TARGETS = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0]])  # class 2 has no positive


def test_mean_average_precision_counts_empty_class_as_zero(caplog):
    with caplog.at_level(logging.WARNING):
        value = mean_average_precision(SCORES, TARGETS)
    assert value == pytest.approx((5 / 6 + 1.0 + 0.0) / 3)
    assert "1 of 3 classes have no positive" in caplog.text


def test_mean_average_precision_skip_empty():
    assert mean_average_precision(SCORES, TARGETS, skip_empty=True) == pytest.approx(
        (5 / 6 + 1) / 2
    )
    assert np.isnan(mean_average_precision(SCORES, np.zeros_like(TARGETS), skip_empty=True))


def test_top1_accuracy_ties_and_onehot():
    logits = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    # tie in row 0 goes to class 0 (first index), as np.argmax
    assert top1_accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    assert top1_accuracy(logits, [1, 1, 0]) == pytest.approx(2 / 3)
    onehot = np.eye(3)[[0, 1, 1]]
    assert top1_accuracy(logits, onehot) == pytest.approx(2 / 3)
    # multi-hot target counts its first positive only, as CAV-MAE's argmax(target)
    assert top1_accuracy(logits[:1], [[0, 1, 1]]) == 0.0


def test_accumulator_equals_whole_set():
    metric = ClassificationMetrics()
    metric.update(torch.tensor(SCORES[:2]), torch.tensor(TARGETS[:2]))
    metric.update(SCORES[2:], TARGETS[2:])
    out = metric.compute()
    assert out["mAP"] == pytest.approx(mean_average_precision(SCORES, TARGETS))
    assert out["acc"] == pytest.approx(top1_accuracy(SCORES, TARGETS))
    metric.reset()
    metric.update(SCORES, np.array([0, 0, 0, 1]))  # index targets become one-hot
    assert metric.compute()["acc"] == pytest.approx(0.75)
