"""The ``torchmetrics.Metric`` collectors: updates split over two instances (two ranks), merged,
score as one instance given every update."""

import numpy as np
import pytest

from avpretrain.metrics.av_quality import QualityMetrics
from avpretrain.metrics.caption import CaptionMetrics
from avpretrain.metrics.classification import ClassificationMetrics
from avpretrain.metrics.localization import LocalizationMetrics
from avpretrain.metrics.music_avqa import AVQAAccuracy
from avpretrain.metrics.parsing import ParsingMetrics
from avpretrain.metrics.retrieval import RetrievalMetrics
from avpretrain.metrics.segmentation import SegmentationMetrics
from avpretrain.metrics.separation import SeparationMetrics
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


def test_segmentation():
    # one frame per clip; videos spread over both halves
    batches = [
        (rng.random((3, 8, 8)), rng.random((3, 8, 8)) > 0.6, [f"v{(i + k) % 4}" for k in range(3)])
        for i in range(4)
    ]
    assert_same(*split_equals_whole(SegmentationMetrics, batches))


def test_parsing():
    batches = [tuple((rng.random((4, 2, 5, 10)) < 0.35).astype(int)) for _ in range(4)]
    assert_same(*split_equals_whole(ParsingMetrics, batches))


def test_quality():
    batches = []
    for _ in range(4):
        mos = rng.random(6) * 100
        batches.append((mos + rng.normal(size=6) * 20, mos))
    assert_same(*split_equals_whole(QualityMetrics, batches))


def test_separation():
    def batch(n, silent=False):
        refs = rng.normal(size=(n, 2, 1024))
        if silent:
            refs[0, 1] = 0.0  # skipped, counted in the sum state
        return refs, refs + 0.3 * rng.normal(size=refs.shape), refs.sum(1)

    batches = [batch(1), batch(2, silent=True), batch(1), batch(1)]
    whole, merged = split_equals_whole(SeparationMetrics, batches)
    assert whole["count"] == 4 and whole["skipped"] == 1
    assert_same(whole, merged)


def test_music_avqa():
    kinds = [("Audio", "Counting"), ("Visual", "Location"), ("Other", "Other")]
    batches = [(rng.integers(0, 3, 3), rng.integers(0, 3, 3), kinds) for _ in range(4)]
    assert_same(*split_equals_whole(AVQAAccuracy, batches))


def test_caption_counts_an_answer_of_two_ranks_once():
    batches = [
        ([f"d{i}#0", f"d{i}#1"], ["a dog barks", "yes"], [["a dog", "dogs bark"], "no"])
        for i in range(4)
    ]
    whole, first, second = (CaptionMetrics(tokenizer="simple", meteor=False) for _ in range(3))
    for i, batch in enumerate(batches):
        whole.update(*batch)
        (first if i % 2 == 0 else second).update(*batch)
    second.update(["d0#0"], ["a dog barks"], [["a dog", "dogs bark"]])  # the sampler's repeat
    second.merge_state(first)
    assert [r["key"] for r in second.records()] == ["d0#0", "d0#1", "d2#0", "d2#1"] + [
        "d1#0",
        "d1#1",
        "d3#0",
        "d3#1",
    ]
    out = second.compute()
    assert out == whole.compute() and out["answers"] == 8
