"""The ``torchmetrics.Metric`` collectors: updates split over two instances (two ranks), merged,
score as one instance given every update."""

import numpy as np
import pytest

from avpretrain.metrics.classification import ClassificationMetrics
from avpretrain.metrics.localization import LocalizationMetrics
from avpretrain.metrics.retrieval import RetrievalMetrics
from avpretrain.metrics.slavc import SLAVCMetrics

rng = np.random.default_rng(0)


def split_equals_whole(make, batches):
    """``make()`` updated with every batch vs. two instances given alternate batches, merged.

    The first instance takes the even batches, the second the odd ones; merging the first into
    the second puts the first's rows ahead (as a sync puts rank 0's), so means and sorts see
    the same values. Returns both results.
    """
    whole, first, second = make(), make(), make()
    for i, batch in enumerate(batches):
        whole.update(*batch)
        (first if i % 2 == 0 else second).update(*batch)
    second.merge_state(first)
    return whole.compute(), second.compute()


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], nan_ok=True), key


def test_classification():
    batches = [(rng.random((5, 4)), rng.integers(0, 4, 5)) for _ in range(4)]
    assert_same(*split_equals_whole(ClassificationMetrics, batches))
    multi = [(rng.random((5, 4)), rng.integers(0, 2, (5, 4))) for _ in range(4)]
    assert_same(*split_equals_whole(lambda: ClassificationMetrics(keys=("mAP",)), multi))


def _maps(n, boxes=True):
    gt = np.zeros((n, 16, 16))
    if boxes:
        for g in gt:
            y, x = rng.integers(0, 10, 2)
            g[y : y + 6, x : x + 6] = 1
    return rng.normal(size=(n, 4, 4)), gt


def test_localization():
    assert_same(*split_equals_whole(LocalizationMetrics, [_maps(3) for _ in range(4)]))


def test_slavc():
    batches = [_maps(3, boxes=i % 3 != 2) for i in range(6)]
    assert_same(*split_equals_whole(lambda: SLAVCMetrics(tau=1.0), batches))


def test_retrieval():
    batches = [(rng.normal(size=(4, 3)), rng.normal(size=(4, 3))) for _ in range(4)]
    batches.append((batches[0][0][:2], batches[0][1][:2]))  # ties across the two halves
    assert_same(*split_equals_whole(RetrievalMetrics, batches))
