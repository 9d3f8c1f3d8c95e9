"""The staged filter on a hand-made score table: absolute thresholds, quantiles, switches."""

from __future__ import annotations

import numpy as np
import pytest

from avpretrain.curation.filter import filter_scores, parse_thresholds

# clip: audio_visual, temporal, text_audio, text_visual (None = no caption)
TABLE = [
    (0.9, 0.8, 0.7, 0.6),  # 0 good everywhere
    (0.2, 0.9, 0.9, 0.9),  # 1 wrong audio
    (0.8, 0.1, 0.9, 0.9),  # 2 out of sync
    (0.7, 0.7, 0.1, 0.9),  # 3 caption does not describe the sound
    (0.6, 0.6, None, None),  # 4 no caption: skips only the language stage
    (0.5, 0.5, 0.8, 0.2),  # 5 caption does not describe the picture
]
SCORES = [
    dict(zip(("audio_visual", "temporal", "text_audio", "text_visual"), row, strict=True))
    for row in TABLE
]


def test_absolute_thresholds_keep_expected_clips() -> None:
    th = {"audio_visual": 0.4, "temporal": 0.4, "text_audio": 0.5, "text_visual": 0.5}
    result = filter_scores(SCORES, th)
    assert [i for i, k in enumerate(result.keep) if k] == [0, 4]
    names = [s.name for s in result.stages]
    assert names == ["instance", "temporal", "language"]  # the paper's order
    entered = [(s.entered, s.kept) for s in result.stages]
    assert entered == [(6, 5), (5, 4), (4, 2)]
    assert result.stages[2].skipped == 1  # clip 4, no caption
    assert result.stages[0].thresholds == {"audio_visual": 0.4}


def test_quantile_thresholds_use_clips_entering_each_stage() -> None:
    result = filter_scores(SCORES, {"audio_visual": 0.2, "temporal": 0.25}, quantile=True)
    # sorted 0.2, 0.5, 0.6, ...: the 0.2-quantile sits at position 0.2 * 5 = 1 -> 0.5
    assert result.stages[0].thresholds["audio_visual"] == pytest.approx(0.5)
    assert np.quantile([r[0] for r in TABLE], 0.2) == pytest.approx(0.5)
    assert result.stages[0].kept == 5
    # temporal quantile among the five survivors (0.8, 0.1, 0.7, 0.6, 0.5): q=0.25 -> 0.5
    assert result.stages[1].thresholds["temporal"] == pytest.approx(0.5)
    assert [i for i, k in enumerate(result.keep) if k] == [0, 3, 4, 5]
    assert not result.stages[2].active  # no language threshold: nothing filtered


def test_stages_switch_off() -> None:
    th = {"audio_visual": 0.4, "temporal": 0.4, "text_audio": 0.5}
    result = filter_scores(SCORES, th, stages=["temporal"])
    assert [i for i, k in enumerate(result.keep) if k] == [0, 1, 3, 4, 5]
    assert [s.active for s in result.stages] == [False, True, False]


def test_bad_thresholds_are_rejected() -> None:
    assert parse_thresholds("audio_visual=0.5, temporal=0.25") == {
        "audio_visual": 0.5,
        "temporal": 0.25,
    }
    with pytest.raises(ValueError, match="bad threshold"):
        parse_thresholds("loudness=0.3")
    with pytest.raises(ValueError, match="quantile"):
        filter_scores(SCORES, {"temporal": 1.5}, quantile=True)
    with pytest.raises(ValueError, match="unknown stage"):
        filter_scores(SCORES, {}, stages=["visual"])
