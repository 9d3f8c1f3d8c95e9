"""MUSIC-AVQA accuracy per type, modality (sample-weighted) and overall, by hand."""

import logging

import pytest
import torch

from avpretrain.metrics.music_avqa import AVQAAccuracy, parse_type


def test_per_type_modality_and_overall_by_hand():
    metric = AVQAAccuracy()
    # Audio Counting 2/3, Audio Comparative 0/1 -> Audio 2/4 (not the mean 1/3 of 2/3 and 0)
    metric.update(
        torch.tensor([1, 2, 3, 4]),
        torch.tensor([1, 2, 0, 5]),
        ['["Audio", "Counting"]'] * 3 + [("Audio", "Comparative")],
    )
    # Visual Location 1/1; AV Temporal 1/2, AV Counting 0/1 -> AV 1/3
    metric.update(
        ["left", "yes", "no", "two"],
        ["left", "yes", "yes", "three"],
        [
            ("Visual", "Location"),
            ("Audio-Visual", "Temporal"),
            ("Audio-Visual", "Temporal"),
            '["Audio-Visual", "Counting"]',
        ],
    )
    out = metric.compute()
    assert list(out) == [
        "Audio Counting",
        "Audio Cmp",
        "Audio",
        "Visual Loc",
        "Visual",
        "AV counting",
        "AV Temporal",
        "AV",
        "Overall",
        "count",
    ]
    assert out["count"] == 8
    assert out["Audio Counting"] == pytest.approx(2 / 3)
    assert out["Audio Cmp"] == 0.0
    assert out["Audio"] == pytest.approx(2 / 4)
    assert out["Visual Loc"] == out["Visual"] == 1.0
    assert out["AV Temporal"] == pytest.approx(1 / 2)
    assert out["AV counting"] == 0.0
    assert out["AV"] == pytest.approx(1 / 3)
    assert out["Overall"] == pytest.approx(4 / 8)


def test_unknown_type_counts_in_overall_only(caplog):
    metric = AVQAAccuracy()
    with caplog.at_level(logging.WARNING):
        metric.update([1, 0], [1, 1], [("Audio", "Counting"), ("Visual", "Existential")])
    assert "not one of the nine" in caplog.text
    out = metric.compute()
    assert out == {"Audio Counting": 1.0, "Audio": 1.0, "Overall": 0.5, "count": 2.0}


def test_bad_inputs_and_reset():
    metric = AVQAAccuracy()
    with pytest.raises(ValueError, match="differ"):
        metric.update([1, 2], [1], [("Audio", "Counting")] * 2)
    with pytest.raises(ValueError, match="modality"):
        parse_type('["Audio"]')
    metric.update([1], [1], [("Audio", "Counting")])
    metric.reset()
    with pytest.raises(ValueError, match="no update"):
        metric.compute()
