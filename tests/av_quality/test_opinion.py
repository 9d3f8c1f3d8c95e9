"""Opinion-score processing on small tables whose outcome is worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from avpretrain.av_quality.opinion import (
    bt500_outliers,
    mos_table,
    reject_far_from_reference,
    rescale_100,
    screen_yt_ntu_avq,
    sfqa_mos,
    to_level,
    z_to_100,
    zscores,
)

ITEMS = ["i1", "i2", "i3", "i4"]


def _rows(submission, subject, ratings, dimension="overall", items=ITEMS, t0=0):
    return [
        {
            "submission": submission,
            "subject": subject,
            "item": item,
            "dimension": dimension,
            "rating": r,
            "timestamp": t0 + k,
        }
        for k, (item, r) in enumerate(zip(items, ratings, strict=True))
    ]


def test_yt_ntu_avq_screening_worked_by_hand():
    rows = (
        _rows("s1", "u1", [1, 2, 3, 4])
        + _rows("s2", "u2", [2, 3, 4, 5])
        + _rows("s3", "u3", [1, 2, 4, 5])
        + _rows("s4", "u4", [3, 3, 3, 3])  # constant: STD 0, no rank information
        + _rows("s5", "u5", [4, 3, 2, 1])  # reversed: SROCC -1
        + _rows("s6", "u6", [1, 2, 7, 4])  # 7 is off the 1-5 scale
        + _rows("s7", "u1", [5, 5, 5, 5], t0=100)  # u1 again, later: every rating a duplicate
        + _rows("s8", "u7", [1, float("nan"), 3, 4])
    )
    # s7 comes first in the file but its timestamps are later: "first" follows the timestamp
    table = pd.DataFrame(rows[28:32] + rows[:28] + rows[32:])
    result = screen_yt_ntu_avq(table, rating_range=(1, 5), screen_dimensions=["overall"])
    report = result.report.set_index("submission")
    assert report["reason"].to_dict() == {
        "s7": "duplicate",
        "s1": "ok",
        "s2": "ok",
        "s3": "ok",
        "s4": "low_srocc+low_std",
        "s5": "low_srocc",
        "s6": "invalid_rating",
        "s8": "invalid_rating",
    }
    assert report.loc["s7", "n_duplicate"] == 4
    assert report.loc["s6", "n_invalid"] == 1
    # preliminary MOS from s1-s5: 2.2, 2.6, 3.2, 3.6 (increasing), so s1-s3 rank it perfectly
    assert report.loc["s1", "srocc"] == pytest.approx(1.0)
    assert report.loc["s5", "srocc"] == pytest.approx(-1.0)
    assert report.loc["s4", "srocc"] == 0.0
    # STD of [1, 2, 3, 4] = sqrt(5 / 3)
    assert report.loc["s5", "std"] == pytest.approx(math.sqrt(5 / 3))
    assert report.loc["s4", "std"] == 0.0
    mos = result.mos.set_index("item")
    # final MOS from s1, s2, s3 only
    np.testing.assert_allclose(mos.loc[ITEMS, "mos"], [4 / 3, 7 / 3, 11 / 3, 14 / 3])
    # i1: ratings 1, 2, 1 -> squared deviations 1/9 + 4/9 + 1/9, over n - 1 = 2
    assert mos.loc["i1", "std"] == pytest.approx(math.sqrt(1 / 3))
    assert (mos["n"] == 3).all()


def test_yt_ntu_avq_averages_over_dimensions():
    rows = []
    for sub, overall, audio in (
        ("a", [1, 2, 3, 4], [1, 2, 3, 4]),
        ("b", [2, 3, 4, 5], [2, 3, 4, 5]),
        ("c", [1, 2, 3, 4], [1, 2, 3, 4]),
        ("d", [1, 2, 3, 4], [4, 3, 1, 2]),
    ):
        rows += _rows(sub, sub, overall, "overall") + _rows(sub, sub, audio, "audio")
    table = pd.DataFrame(rows)
    ranges = {"overall": (1, 5), "audio": (1, 5)}
    result = screen_yt_ntu_avq(table, ranges, screen_dimensions=["overall", "audio"])
    report = result.report.set_index("submission")
    # d: overall SROCC 1; audio MOS 2, 2.5, 2.75, 3.75 vs [4, 3, 1, 2]: sum d^2 = 18,
    # rho = 1 - 6 * 18 / (4 * 15) = -0.8; mean (1 - 0.8) / 2 = 0.1 < 0.5
    assert report.loc["d", "srocc"] == pytest.approx(0.1)
    assert report["kept"].to_dict() == {"a": True, "b": True, "c": True, "d": False}
    # d's overall ratings are fine, yet the whole submission goes
    mos = result.mos.set_index(["item", "dimension"])
    assert mos.loc[("i1", "overall"), "mos"] == pytest.approx(4 / 3)


def test_yt_ntu_avq_too_few_items():
    rows = [r for sub in ("a", "b", "c") for r in _rows(sub, sub, [1, 2, 3, 4])]
    rows += _rows("d", "d", [1, 3], items=["i1", "i2"])  # SROCC over 2 items is always +-1
    report = screen_yt_ntu_avq(pd.DataFrame(rows), (1, 5), ["overall"]).report
    assert report.set_index("submission").loc["d", "reason"] == "too_few_items"


def test_yt_ntu_avq_bad_input():
    table = pd.DataFrame(_rows("s1", "u1", [1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"screen_dimensions \['video'\]"):
        screen_yt_ntu_avq(table, (1, 5), screen_dimensions=["video"])
    with pytest.raises(ValueError, match="no rating range given"):
        screen_yt_ntu_avq(table, {"video": (1, 5)}, screen_dimensions=["overall"])
    with pytest.raises(ValueError, match="lacks column"):
        screen_yt_ntu_avq(table.drop(columns="rating"))


def test_mos_table_by_hand():
    table = pd.DataFrame(
        {"item": ["a", "a", "b"], "dimension": ["overall"] * 3, "rating": [2.0, 4.0, 5.0]}
    )
    mos = mos_table(table).set_index("item")
    assert mos.loc["a", "mos"] == 3.0
    assert mos.loc["a", "std"] == pytest.approx(math.sqrt(2))
    assert math.isnan(mos.loc["b", "std"])
    assert mos["n"].tolist() == [2, 1]


def test_zscores_by_hand():
    # mean 3, sample STD 1 -> z = rating - 3; the second subject's scale is twice as wide
    table = pd.DataFrame(
        {
            "subject": ["u"] * 3 + ["v"] * 3 + ["w"] * 2,
            "dimension": "overall",
            "rating": [2, 3, 4, 2, 4, 6, 3, 3],
        }
    )
    z = zscores(table)
    np.testing.assert_allclose(z[:6], [-1, 0, 1, -1, 0, 1])
    assert z[6:].isna().all()  # constant ratings have no scale


def _bt500_table() -> pd.DataFrame:
    # subject A (first row) and nine others, on a 0-100 scale
    return pd.DataFrame(
        {
            # mean 50, sum of squares 3200: s = sqrt(3200 / 9) = 18.86, m2 = 320,
            # m4 = 356000, beta2 = 356000 / 320^2 = 3.48 (normal): A's 90 >= 50 + 37.7
            "i1": [90, 20, 30, 40, 50, 50, 60, 60, 50, 50],
            # the mirror image: A's 10 <= 50 - 37.7
            "i2": [10, 80, 70, 60, 50, 50, 40, 40, 50, 50],
            # sum of squares 1200, s = 11.55, beta2 = 36000 / 120^2 = 2.5: nobody beyond 23.1
            "i3": [50, 30, 40, 50, 60, 70, 50, 50, 40, 60],
            # s = 15.6 and A's 90 is 2.56 s above the mean, but beta2 = 274000 / 220^2 = 5.66:
            # heavy-tailed, so the limit is sqrt(20) s = 69.9 and A is not counted
            "i4": [90, 30, 40, 40, 50, 50, 50, 50, 50, 50],
        },
        index=list("ABCDEFGHIJ"),
    )


def test_bt500_by_hand():
    flags = bt500_outliers(_bt500_table())
    assert flags.loc["A", ["P", "Q", "n"]].tolist() == [1, 1, 4]
    # (1 + 1) / 4 > 0.05 and |1 - 1| / 2 = 0 < 0.3
    assert flags["rejected"].tolist() == [True] + [False] * 9
    assert flags.drop(index="A")[["P", "Q"]].to_numpy().sum() == 0


def test_bt500_one_sided_outliers_are_a_bias_not_an_outlier():
    table = _bt500_table()
    table["i2"] = table["i1"]  # A now high on both: P = 2, Q = 0, |P - Q| / (P + Q) = 1
    flags = bt500_outliers(table)
    assert flags.loc["A", ["P", "Q"]].tolist() == [2, 0]
    assert not flags["rejected"].any()


def test_bt500_skips_missing_scores():
    table = _bt500_table().astype(float)
    table.loc["B", "i3"] = np.nan
    flags = bt500_outliers(table)
    assert flags.loc["B", "n"] == 3
    assert flags.loc["A", "rejected"]


def test_sfqa_mos_by_hand():
    table = pd.DataFrame(
        {
            "subject": ["s1"] * 3 + ["s2"] * 3 + ["s3"] * 3 + ["s4"] * 3,
            "item": ["a", "b", "c"] * 4,
            # z: s1 [-1, 0, 1], s2 [-1, 0, 1], s3 [0, 1, -1] (mean 3, STD 1), s4 constant
            "rating": [1, 2, 3, 2, 4, 6, 3, 4, 2, 3, 3, 3],
        }
    )
    result = sfqa_mos(table, rescale=False)
    mos = result.mos.set_index("item")
    np.testing.assert_allclose(mos.loc[["a", "b", "c"], "mos"], [-2 / 3, 1 / 3, 1 / 3])
    report = result.report.set_index("subject")
    assert report.loc["s4", "reason"] == "no_scale"
    assert report["kept"].tolist() == [True, True, True, False]
    rescaled = sfqa_mos(table).mos.set_index("item")
    # (z + 3) * 100 / 6: -2/3 -> 38.89; z STD of a ([-1, -1, 0]) is sqrt(1/3), scaled by 100/6
    assert rescaled.loc["a", "mos"] == pytest.approx((3 - 2 / 3) * 100 / 6)
    assert rescaled.loc["a", "std"] == pytest.approx(math.sqrt(1 / 3) * 100 / 6)


def test_sfqa_rejects_an_erratic_subject():
    # 14 raters follow the true quality with noise; s0 rates a random permutation of it, which
    # puts it beyond 2 s on one item each way (checked: P = Q = 1 of 12 scores)
    rng = np.random.default_rng(0)
    quality = np.linspace(1, 5, 12)
    rows = []
    for s in range(15):
        ratings = quality + rng.normal(0, 0.5, size=12)
        if s == 0:
            ratings = rng.permutation(quality)
        rows += [{"subject": f"s{s}", "item": i, "rating": r} for i, r in enumerate(ratings)]
    table = pd.DataFrame(rows)
    result = sfqa_mos(table, rescale=False)
    report = result.report.set_index("subject")
    assert report.loc["s0", "reason"] == "bt500"
    assert report.loc["s0", ["P", "Q"]].tolist() == [1, 1]
    assert report.drop(index="s0")["kept"].all()
    # MOS = mean over the 14 others of (r - mean_s) / std_s, computed here with numpy
    others = table[table["subject"] != "s0"]
    z = others.groupby("subject")["rating"].transform(lambda r: (r - r.mean()) / r.std(ddof=1))
    expected = z.groupby(others["item"]).mean()
    np.testing.assert_allclose(result.mos.set_index("item")["mos"], expected)


def test_rescale_and_levels():
    assert rescale_100(np.array([1.0, 3.0, 5.0]), 1, 5).tolist() == [0, 50, 100]
    assert z_to_100(-3.0) == 0 and z_to_100(3.0) == 100 and z_to_100(0.0) == 50
    scores = [-3, 0, 19.99, 20, 59.9, 79.99, 80, 100, 105]
    assert to_level(scores).tolist() == [0, 0, 0, 1, 2, 3, 4, 4, 4]
    with pytest.raises(ValueError, match="high > low"):
        rescale_100(3.0, 5, 1)


def test_reject_far_from_reference():
    table = pd.DataFrame(
        {"item": ["ref", "ref", "ref", "ref", "x"], "rating": [5.0, 4.0, 3.0, 1.0, 1.0]}
    )
    # on 1-5: 5 -> 100 (level 4), 4 -> 75 (3), 3 -> 50 (2), 1 -> 0 (0); reference level 4
    kept, dropped = reject_far_from_reference(table, {"ref": 4}, rating_range=(1, 5))
    assert kept["rating"].tolist() == [5.0, 4.0, 1.0]  # the last is "x", not a reference
    assert dropped["rating"].tolist() == [3.0, 1.0]
    with pytest.raises(ValueError, match="0..4"):
        reject_far_from_reference(table, {"ref": 5})
