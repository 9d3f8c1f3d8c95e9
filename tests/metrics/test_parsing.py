"""LLP segment- and event-level F against hand-worked videos and a loop-style reference."""

import numpy as np
import pytest
import torch

from avpretrain.metrics.parsing import (
    ParsingMetrics,
    event_level_f,
    extract_events,
    parsing_metrics,
    predictions_from_probs,
    segment_level_f,
    segments_to_matrix,
)


def runs(c: int, t: int, rows: dict[int, list[tuple[int, int]]]) -> np.ndarray:
    """[c, t] matrix with 1s on the [start, end) runs given per class."""
    m = np.zeros((c, t), dtype=np.int64)
    for cls, spans in rows.items():
        for start, end in spans:
            m[cls, start:end] = 1
    return m


def test_extract_events_maximal_runs_including_edges():
    assert extract_events([1, 1, 0, 0, 1, 0, 1, 1, 1, 1]) == [(0, 2), (4, 5), (6, 10)]
    assert extract_events(np.ones(10)) == [(0, 10)]
    assert extract_events(np.zeros(10)) == []


def test_event_spanning_the_whole_clip():
    gt = runs(3, 10, {0: [(0, 10)]})
    assert segment_level_f(gt, gt) == 1.0
    assert event_level_f(gt, gt) == 1.0
    # prediction covers the first 6 of 10: IoU 0.6 is a match; segments TP 6, FN 4
    pred = runs(3, 10, {0: [(0, 6)]})
    assert event_level_f(pred, gt) == 1.0
    assert segment_level_f(pred, gt) == pytest.approx(12 / 16)


def test_no_events_at_all_is_perfect_and_a_lone_false_positive_is_zero():
    empty = np.zeros((25, 10), dtype=int)
    scores = parsing_metrics(empty, empty, empty, empty)
    assert set(scores.values()) == {1.0}  # every class skipped -> "all true negatives"
    pred = runs(25, 10, {4: [(2, 3)]})
    assert segment_level_f(pred, empty) == 0.0
    assert event_level_f(pred, empty) == 0.0


def test_mixed_video_iou_just_below_and_at_threshold():
    gt = runs(4, 10, {0: [(0, 4), (6, 10)], 1: [(2, 7)], 2: [(0, 10)]})
    pred = runs(4, 10, {0: [(0, 2), (5, 7)], 1: [(4, 9)], 2: [(0, 3), (4, 10)]})
    # class 0: [0,2) vs [0,4) IoU 2/4 = 0.5 -> TP (inclusive); [5,7) best IoU 1/5 -> FP;
    #          gt [6,10) unmatched -> FN: F = 2 / 4
    # class 1: [4,9) vs [2,7) IoU 3/7 < 0.5 -> FP, FN: F = 0
    # class 2: [0,3) IoU 0.3 -> FP; [4,10) IoU 0.6 -> TP; gt matched: F = 2 / 3
    # class 3: nothing -> skipped
    assert event_level_f(pred, gt) == pytest.approx((0.5 + 0 + 2 / 3) / 3)
    # segments: class 0 TP 3 FP 1 FN 5; class 1 TP 3 FP 2 FN 2; class 2 TP 9 FP 0 FN 1
    assert segment_level_f(pred, gt) == pytest.approx((6 / 12 + 6 / 10 + 18 / 19) / 3)
    # raising the threshold above 0.5 turns class 0's match into FP + FN
    assert event_level_f(pred, gt, iou=0.51) == pytest.approx((0 + 0 + 2 / 3) / 3)


def test_av_conjunction_type_and_event_at_av_by_hand():
    audio_gt = runs(3, 10, {0: [(0, 6)], 2: [(8, 10)]})
    visual_gt = runs(3, 10, {0: [(3, 10)]})
    audio_pred = runs(3, 10, {0: [(0, 6)]})  # misses class 2
    visual_pred = runs(3, 10, {0: [(3, 10)], 1: [(0, 2)]})  # class 1 is a visual false alarm
    s = parsing_metrics(audio_pred, visual_pred, audio_gt, visual_gt)
    for level in ("segment", "event"):
        assert s[f"{level}/audio"] == pytest.approx(0.5)  # class 0 perfect, class 2 all FN
        assert s[f"{level}/visual"] == pytest.approx(0.5)  # class 0 perfect, class 1 all FP
        # AV ground truth and prediction are both class 0 on [3, 6): class 1 has no audio
        assert s[f"{level}/av"] == 1.0
        assert s[f"{level}/type@av"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
        # summed audio + visual counts: class 0 perfect, class 1 FP only, class 2 FN only
        assert s[f"{level}/event@av"] == pytest.approx(1 / 3)


def test_predictions_from_probs_inclusive_threshold_and_video_mask():
    global_prob = np.array([0.6, 0.4, 0.5])
    frame = np.array([[0.5, 0.9, 0.2], [0.49, 0.9, 0.7], [0.8, 0.9, 0.5]])  # [T=3, C=3]
    pred = predictions_from_probs(global_prob, frame)
    # class 1 is masked by its video-level 0.4; 0.5 counts at both levels
    np.testing.assert_array_equal(pred, [[1, 0, 1], [0, 0, 0], [0, 1, 1]])
    audio, visual = predictions_from_probs(torch.tensor(global_prob), np.stack([frame, 1 - frame]))
    np.testing.assert_array_equal(audio, pred)
    np.testing.assert_array_equal(visual, [[1, 1, 0], [0, 0, 0], [1, 0, 1]])
    with pytest.raises(ValueError, match="frame_prob"):
        predictions_from_probs(global_prob, np.zeros((3, 4)))


def test_segments_to_matrix_as_official_slicing():
    gt = segments_to_matrix([[0, 0, 4], [0, 2, 6], [1, 9, 9], [2, 9, 10]], num_classes=3)
    np.testing.assert_array_equal(gt[0], [1] * 6 + [0] * 4)  # overlapping rows merge
    assert gt[1].sum() == 0  # onset == offset marks nothing
    assert gt[2].tolist() == [0] * 9 + [1]
    with pytest.raises(ValueError, match="class"):
        segments_to_matrix([[3, 0, 1]], num_classes=3)


def _reference_f(pred: np.ndarray, gt: np.ndarray, events: bool) -> float:
    """Loop-style port of the official per-class counting (vectors of length T per event)."""

    def event_vectors(seq):
        out, i, t = [], 0, len(seq)
        while i < t:
            if seq[i] == 1:
                j = i
                while j < t and seq[j] == 1:
                    j += 1
                v = np.zeros(t)
                v[i:j] = 1
                out.append(v)
                i = j
            else:
                i += 1
        return out

    fs = []
    for p, g in zip(pred, gt, strict=True):
        if events:
            ep, eg = event_vectors(p), event_vectors(g)
            ok = lambda x, y: np.sum(x * y) >= 0.5 * np.sum(x + y - x * y)  # noqa: E731
            tp = sum(any(ok(x, y) for y in eg) for x in ep)
            fp = len(ep) - tp
            fn = sum(not any(ok(y, x) for x in ep) for y in eg)
        else:
            tp, fp, fn = np.sum(p * g), np.sum(p * (1 - g)), np.sum((1 - p) * g)
        if tp + fp != 0 or tp + fn != 0:
            fs.append(2 * tp / (2 * tp + fn + fp))
    return sum(fs) / len(fs) if fs else 1.0


def test_random_videos_match_loop_reference_and_accumulator_means():
    rng = np.random.default_rng(0)
    shape = (6, 5, 10)
    a_pred, v_pred, a_gt, v_gt = (rng.random((4, *shape)) < 0.35).astype(int)
    metric = ParsingMetrics()
    metric.update(a_pred[:4], v_pred[:4], a_gt[:4], v_gt[:4])
    metric.update(torch.tensor(a_pred[4:]), v_pred[4:], a_gt[4:], v_gt[4:])
    per_video = []
    for i in range(shape[0]):
        s = parsing_metrics(a_pred[i], v_pred[i], a_gt[i], v_gt[i])
        per_video.append(s)
        for level, events in (("segment", False), ("event", True)):
            assert s[f"{level}/audio"] == pytest.approx(_reference_f(a_pred[i], a_gt[i], events))
            assert s[f"{level}/visual"] == pytest.approx(_reference_f(v_pred[i], v_gt[i], events))
            av = _reference_f(a_pred[i] * v_pred[i], a_gt[i] * v_gt[i], events)
            assert s[f"{level}/av"] == pytest.approx(av)
    total = metric.compute()
    assert len(total) == 10
    for key, value in total.items():
        assert value == pytest.approx(np.mean([s[key] for s in per_video]))


def test_update_from_probs_equals_thresholded_update():
    rng = np.random.default_rng(1)
    global_prob, frame_prob = rng.random((2, 7)), rng.random((2, 2, 10, 7))
    a_gt, v_gt = (rng.random((2, 2, 7, 10)) < 0.4).astype(int)
    by_probs, by_preds = ParsingMetrics(), ParsingMetrics()
    by_probs.update_from_probs(global_prob, frame_prob, a_gt, v_gt)
    for b in range(2):
        audio, visual = predictions_from_probs(global_prob[b], frame_prob[b])
        by_preds.update(audio, visual, a_gt[b], v_gt[b])
    assert by_probs.compute() == by_preds.compute()
    with pytest.raises(ValueError, match="no update"):
        ParsingMetrics().compute()
