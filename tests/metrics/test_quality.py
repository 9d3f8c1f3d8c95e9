"""Quality assessment metrics against hand-worked correlations and the logistic's properties."""

import math

import numpy as np
import pytest
import torch

from avpretrain.metrics.av_quality import (
    METRIC_NAMES,
    QualityMetrics,
    fit_logistic,
    fold_summary,
    krcc,
    logistic4,
    plcc,
    quality_metrics,
    srcc,
)


def test_monotone_nonlinear_prediction_is_perfect_after_the_logistic_fit():
    # zero-mean predictions: the midpoint guess is ~1e-17, where finite differences stall
    pred = np.linspace(-4, 4, 30)
    mos = logistic4(pred, 5.0, 1.0, 0.3, 0.8)
    out = quality_metrics(pred, mos)
    assert out["SRCC"] == pytest.approx(1.0)
    assert out["KRCC"] == pytest.approx(1.0)
    assert out["PLCC"] < 0.98  # the raw, unfitted correlation sees the curve
    assert out["PLCC_logistic"] == pytest.approx(1.0, abs=1e-9)
    assert out["RMSE_logistic"] == pytest.approx(0.0, abs=1e-6)
    assert tuple(out) == METRIC_NAMES


def test_fit_recovers_the_parameters():
    pred = np.linspace(0, 10, 40)
    mos = logistic4(pred, 80.0, 20.0, 6.0, 1.5)
    fitted, params = fit_logistic(pred, mos)
    np.testing.assert_allclose(params[:3], [80.0, 20.0, 6.0], atol=1e-5)
    assert abs(params[3]) == pytest.approx(1.5, abs=1e-5)
    np.testing.assert_allclose(fitted, mos, atol=1e-6)


def test_logistic_formula_by_hand():
    # at the midpoint the curve is halfway; one scale unit above: b2 + (b1 - b2) / (1 + e^-1)
    assert logistic4(np.array([3.0]), 5, 1, 3, 2)[0] == pytest.approx(3.0)
    expected = 1 + 4 / (1 + math.exp(-1))
    assert logistic4(np.array([5.0]), 5, 1, 3, -2)[0] == pytest.approx(expected)


def test_ties_worked_by_hand():
    # pred ranks [1, 2, 3.5, 3.5, 5], mos ranks [2, 1, 3, 4.5, 4.5]: Pearson of ranks 7.75 / 9.5
    pred = [1, 2, 3, 3, 4]
    mos = [2, 1, 3, 4, 4]
    assert srcc(pred, mos) == pytest.approx(7.75 / 9.5)
    # 10 pairs: 7 concordant, 1 discordant, 1 tied in pred only, 1 tied in mos only
    # tau-b = (7 - 1) / sqrt((10 - 1) * (10 - 1))
    assert krcc(pred, mos) == pytest.approx(6 / 9)


def test_tie_in_prediction_only():
    # ranks [1, 2.5, 2.5, 4] vs [1, 3, 2, 4]: 4.5 / sqrt(4.5 * 5); tau-b = 5 / sqrt(5 * 6)
    pred = [1, 2, 2, 3]
    mos = [1, 3, 2, 4]
    assert srcc(pred, mos) == pytest.approx(math.sqrt(0.9))
    assert krcc(pred, mos) == pytest.approx(5 / math.sqrt(30))


def test_spearman_without_ties_matches_the_textbook_formula():
    pred = [1, 2, 3, 4, 5]
    mos = [2, 1, 4, 3, 5]
    d2 = 4  # squared rank differences
    assert srcc(pred, mos) == pytest.approx(1 - 6 * d2 / (5 * (25 - 1)))


def test_pearson_by_hand():
    # deviations [-1, 0, 1] and [-1, 1, 0]: covariance 1 over sqrt(2 * 2)
    assert plcc([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)


def test_reversed_order_gives_minus_one():
    mos = np.array([1.0, 2.5, 3.0, 4.2, 4.9, 5.0])
    pred = -mos
    assert srcc(pred, mos) == pytest.approx(-1.0)
    assert krcc(pred, mos) == pytest.approx(-1.0)
    assert plcc(pred, mos) == pytest.approx(-1.0)
    # the fitted curve may decrease (b1 < b2): the logistic PLCC hides the sign
    assert quality_metrics(pred, mos)["PLCC_logistic"] > 0.99


def test_constant_prediction_is_nan_and_fit_falls_back(caplog):
    pred = np.zeros(6)
    mos = np.arange(6.0)
    assert math.isnan(srcc(pred, mos))
    fitted, params = fit_logistic(pred, mos)
    np.testing.assert_allclose(fitted, mos.mean())
    assert np.isnan(params).all()
    assert "falling back" in caplog.text


def test_bad_input_raises():
    with pytest.raises(ValueError, match="pred has 3 values but mos has 2"):
        srcc([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        plcc([1, float("nan"), 3], [1, 2, 3])


def test_accumulator_matches_one_shot():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=50)
    mos = 3 + np.tanh(pred) + 0.2 * rng.normal(size=50)
    acc = QualityMetrics()
    acc.update(torch.tensor(pred[:20]), torch.tensor(mos[:20]))
    acc.update(pred[20:, None], mos[20:])
    assert acc.compute() == pytest.approx(quality_metrics(pred, mos))
    acc.reset()
    with pytest.raises(ValueError, match="no update"):
        acc.compute()


def test_fold_summary_mean_and_population_std():
    out = fold_summary([{"SRCC": 0.8, "PLCC": 0.7}, {"SRCC": 0.6, "PLCC": 0.9}])
    assert out["SRCC_mean"] == pytest.approx(0.7)
    assert out["SRCC_std"] == pytest.approx(0.1)
    assert out["PLCC_mean"] == pytest.approx(0.8)
    assert out["folds"] == 2
    with pytest.raises(ValueError, match="fold 1"):
        fold_summary([{"SRCC": 0.8}, {"PLCC": 0.8}])
