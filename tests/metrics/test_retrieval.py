"""Retrieval metrics against hand-worked ranks, including CLIP4Clip's handling of ties."""

import numpy as np
import pytest
import torch

from avpretrain.metrics.retrieval import RetrievalMetrics, retrieval_metrics, retrieval_ranks


def test_perfect_and_worst():
    perfect = retrieval_metrics(np.eye(12))
    assert perfect == {"R1": 100.0, "R5": 100.0, "R10": 100.0, "MedianR": 1.0, "MeanR": 1.0}
    worst = retrieval_metrics(1.0 - np.eye(12) * 0.5)  # true score is the lowest of each row
    assert worst == {"R1": 0.0, "R5": 0.0, "R10": 0.0, "MedianR": 12.0, "MeanR": 12.0}


def test_hand_worked_ranks_without_ties():
    sim = np.array([[0.9, 0.1, 0.2], [0.8, 0.3, 0.5], [0.1, 0.9, 0.4]])
    # ranks: row 0 -> 0, row 1 -> 2 (0.8, 0.5 above 0.3), row 2 -> 1
    assert list(retrieval_ranks(sim)) == [0, 2, 1]
    out = retrieval_metrics(torch.tensor(sim))
    assert out["R1"] == pytest.approx(100 / 3)
    assert out["R5"] == 100.0
    assert out["MedianR"] == 2.0
    assert out["MeanR"] == 2.0


def test_ties_give_one_entry_per_tied_column():
    # Row 0's true score ties with column 1 at the top: entries at ranks 0 and 1.
    sim = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert sorted(retrieval_ranks(sim)) == [0, 0, 0, 1]
    out = retrieval_metrics(sim)
    assert out["R1"] == 75.0  # 3 of 4 entries; optimistic would be 100, pessimistic 66.7
    assert out["MedianR"] == 1.0
    assert out["MeanR"] == 1.25


def test_tie_below_top_and_even_median():
    # Row 0: one column above, one tied -> entries 1 and 2; row 1: rank 0.
    sim = np.array([[0.5, 0.9, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    ind = retrieval_ranks(sim)
    assert sorted(ind) == [0, 0, 1, 2]
    out = retrieval_metrics(sim)
    assert out["R1"] == 50.0
    assert out["MedianR"] == 1.5  # median of [0, 0, 1, 2] is 0.5, + 1


def test_matches_strict_rank_count_on_random_scores():
    # Without ties the rank is the number of gallery items scored above the truth.
    sim = np.random.default_rng(0).normal(size=(30, 30))
    expected = (sim > np.diag(sim)[:, None]).sum(1)
    out = retrieval_metrics(sim)
    assert out["R5"] == pytest.approx(100 * np.mean(expected < 5))
    assert out["MeanR"] == pytest.approx(expected.mean() + 1)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        retrieval_metrics(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.array([[np.nan, 0.0], [0.0, 1.0]]))


def test_accumulator_ranks_against_whole_set_both_directions():
    metric = RetrievalMetrics("a2v", "v2a")
    # two identical pairs in different batches: only a whole-set gallery sees the tie
    metric.update(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]]))
    metric.update(torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 0.0]]))
    metric.update(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 1.0]]))
    out = metric.compute()
    # each of the first two rows: entries at ranks 0 and 1; third row: 0 -> 3 of 5 entries
    assert out["a2v_R1"] == pytest.approx(60.0)
    assert out["v2a_R1"] == pytest.approx(60.0)
    assert set(out) == {"gallery_size"} | {
        f"{d}_{k}" for d in ("a2v", "v2a") for k in ("R1", "R5", "R10", "MedianR", "MeanR")
    }


def unit(deg: np.ndarray) -> np.ndarray:
    """[K, 2] unit vectors at the given angles in degrees (cosine = cos of the difference)."""
    return np.stack([np.cos(np.radians(deg)), np.sin(np.radians(deg))], 1)


def test_accumulator_directions_differ_on_asymmetric_sim():
    metric = RetrievalMetrics()
    metric.update(unit(np.array([0.0, 50.0])), unit(np.array([30.0, 40.0])))
    metric.update(unit(np.array([100.0])) * 3.0, unit(np.array([110.0])))  # scale is normalised
    out = metric.compute()
    # audio -> video: every audio's nearest video is its pair
    assert out["a2v_R1"] == 100.0
    # video 0 (30 deg) is nearer audio 1 (50 deg, 20 away) than its pair audio 0 (30 away)
    assert out["v2a_R1"] == pytest.approx(200 / 3)
    assert out["v2a_MeanR"] == pytest.approx(4 / 3)
