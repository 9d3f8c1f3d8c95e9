import math

import pytest

from avpretrain.training.schedule import scaled_lr, warmup_cosine


def test_scaled_lr_is_linear_in_global_batch():
    assert scaled_lr(1.5e-4, 4096) == pytest.approx(1.5e-4 * 16)
    assert scaled_lr(1e-3, 128, reference_batch=256) == pytest.approx(5e-4)


def test_warmup_is_linear_then_cosine_reaches_floor():
    # warmup 4 steps: (step + 1) / 4
    assert [warmup_cosine(s, 4, 14) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warmup_cosine(4, 4, 14) == pytest.approx(1.0)
    # half way through the 10 decay steps: 0.5 * (1 + cos(pi / 2)) = 0.5
    assert warmup_cosine(9, 4, 14) == pytest.approx(0.5)
    assert warmup_cosine(14, 4, 14, min_ratio=0.1) == pytest.approx(0.1)
    assert warmup_cosine(100, 4, 14, min_ratio=0.1) == pytest.approx(0.1)
    # a quarter of the way: 0.5 * (1 + cos(pi / 4))
    expected = 0.5 * (1 + math.cos(math.pi / 4))
    assert warmup_cosine(6, 4, 12) == pytest.approx(expected)


def test_no_warmup_starts_at_peak():
    assert warmup_cosine(0, 0, 10) == pytest.approx(1.0)
