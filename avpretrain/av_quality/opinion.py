"""Raw subjective ratings -> mean opinion scores (MOS), with the screening of two study designs.

Input is one tidy table, one rating per row (rename your columns to these):

    submission  one crowdsourcing task submission (a batch of items rated in one session)
    subject     the rater; optional for YT-NTU-AVQ screening (defaults to ``submission``),
                required for SFQA processing
    item        the rated stimulus
    dimension   what was rated (``overall``, ``video``, ``audio``, ``av_weight``, ...);
                optional for SFQA (default one dimension, ``overall``)
    rating      the score given
    timestamp   optional; orders the ratings when "keep the first" decides

Every standard deviation here is the sample one (``ddof=1``, pandas' default).

**YT-NTU-AVQ** (crowdsourced; :func:`screen_yt_ntu_avq`): a submission is dropped as *invalid*
if any of its ratings is NaN or outside the dimension's range; a rating of an item (and
dimension) its subject already rated is a *duplicate* and dropped (the first one, by
timestamp or else row order, is kept; a submission left with nothing is reported as
``duplicate``). A preliminary MOS per item and dimension is computed from what remains; each
submission gets its SROCC against that MOS and the STD of its own ratings, each averaged over
the screened dimensions (a constant rating vector carries no rank information and counts as
SROCC 0). A submission is kept only if both averages exceed their thresholds (0.5 and 0.5 on
the 1-5 scale by default); the MOS is recomputed from the kept ratings.

**SFQA-style** (:func:`sfqa_mos`): per-subject z-scores ``(r - mean_subject) / std_subject``
(per dimension), subject rejection by the ITU-R BT.500 kurtosis-based screening
(:func:`bt500_outliers`) applied to the z-scores as the LIVE studies do, MOS = mean z-score of
the kept subjects, optionally rescaled to 0-100 by ``(z + 3) * 100 / 6``.

Helpers: :func:`rescale_100` (rating scale -> 0-100), :func:`to_level` (0-100 -> five levels,
bins of 20 points) and :func:`reject_far_from_reference` (drop ratings two or more levels away
from an item's hidden reference level).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from scipy import stats

from avpretrain.av_quality.levels import LEVEL_WIDTH

log = logging.getLogger(__name__)

Range = tuple[float, float]
YT_NTU_AVQ_RANGES: dict[str, Range] = {
    "overall": (1.0, 5.0),
    "video": (1.0, 5.0),
    "audio": (1.0, 5.0),
    "av_weight": (0.0, 100.0),  # relative weight of audio vs video, a slider, not a quality
}
YT_NTU_AVQ_SCREENED = ("overall", "video", "audio")
MOS_COLUMNS = ["item", "dimension", "mos", "std", "n"]


@dataclass
class OpinionResult:
    """MOS table and what the screening decided.

    Attributes:
        mos: one row per item and dimension: ``item, dimension, mos, std, n``.
        report: one row per screened unit (submission or subject) with its statistics,
            ``kept`` and ``reason`` (``"ok"`` when kept).
    """

    mos: pd.DataFrame
    report: pd.DataFrame


def _require(ratings: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in ratings.columns]
    if missing:
        raise ValueError(
            f"{what}: ratings table lacks column(s) {missing} (has {list(ratings.columns)})"
        )


def mos_table(ratings: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample STD and count of ``rating`` per item and dimension.

    Args:
        ratings: tidy table with ``item``, ``dimension``, ``rating``.

    Returns:
        ``item, dimension, mos, std, n`` (``std`` NaN for a single rating).
    """
    _require(ratings, ("item", "dimension", "rating"), "mos_table")
    grouped = ratings.groupby(["item", "dimension"], sort=True)["rating"]
    out = grouped.agg(mos="mean", std="std", n="count").reset_index()
    return out[MOS_COLUMNS]


def _ranges(rating_range: Range | Mapping[str, Range], dims: Sequence[str]) -> dict[str, Range]:
    if isinstance(rating_range, Mapping):
        unknown = [d for d in dims if d not in rating_range]
        if unknown:
            raise ValueError(f"no rating range given for dimension(s) {unknown}")
        return {d: cast(Range, tuple(rating_range[d])) for d in dims}
    return {d: cast(Range, tuple(rating_range)) for d in dims}


def _invalid_rows(ratings: pd.DataFrame, ranges: dict[str, Range]) -> pd.Series:
    lo = ratings["dimension"].map(lambda d: ranges[d][0])
    hi = ratings["dimension"].map(lambda d: ranges[d][1])
    r = ratings["rating"]
    return r.isna() | (r < lo) | (r > hi)


def _srocc(x: np.ndarray, y: np.ndarray) -> float:
    # constant ratings (or MOS) carry no rank information: no agreement, not a NaN to skip
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(stats.spearmanr(x, y).statistic)


def _submission_stats(
    rows: pd.DataFrame, prelim: pd.DataFrame, dims: Sequence[str], min_items: int
) -> tuple[float, float, bool]:
    """Mean SROCC and mean STD over the screened dimensions; False if too few items."""
    sroccs, stds = [], []
    for dim in dims:
        part = rows[rows["dimension"] == dim]
        if len(part) < min_items:
            return math.nan, math.nan, False
        mos = prelim.loc[list(zip(part["item"], part["dimension"], strict=True)), "mos"]
        sroccs.append(_srocc(part["rating"].to_numpy(float), mos.to_numpy(float)))
        stds.append(float(part["rating"].std()))
    return float(np.mean(sroccs)), float(np.mean(stds)), True


def screen_yt_ntu_avq(
    ratings: pd.DataFrame,
    rating_range: Range | Mapping[str, Range] = YT_NTU_AVQ_RANGES,
    screen_dimensions: Sequence[str] = YT_NTU_AVQ_SCREENED,
    srocc_threshold: float = 0.5,
    std_threshold: float = 0.5,
    min_items: int = 3,
) -> OpinionResult:
    """Screen crowdsourced submissions as YT-NTU-AVQ does and compute the MOS.

    Args:
        ratings: tidy table with ``submission``, ``item``, ``dimension``, ``rating`` and
            optionally ``subject`` and ``timestamp``.
        rating_range: allowed ``(low, high)`` for every dimension, or per dimension.
        screen_dimensions: dimensions whose SROCC and STD are averaged for the decision
            (YT-NTU-AVQ's ``av_weight`` slider is not a quality rating and is left out).
        srocc_threshold: a kept submission's mean SROCC must exceed this.
        std_threshold: a kept submission's mean rating STD must exceed this (rules out
            raters who give everything the same score).
        min_items: fewer items than this in a screened dimension rejects the submission
            (a rank correlation over 2 items is always +-1).

    Returns:
        MOS of the kept ratings (all dimensions) and a per-submission report with
        ``subject, n_ratings, n_invalid, n_duplicate, srocc, std, kept, reason``.
    """
    _require(ratings, ("submission", "item", "dimension", "rating"), "screen_yt_ntu_avq")
    df = ratings.copy()
    if "subject" not in df.columns:
        df["subject"] = df["submission"]
    if "timestamp" in df.columns:
        df = df.sort_values("timestamp", kind="stable")
    present = list(pd.unique(df["dimension"]))
    absent = [d for d in screen_dimensions if d not in present]
    if absent:
        raise ValueError(f"screen_dimensions {absent} not among the rated dimensions {present}")
    df["rating"] = pd.to_numeric(df["rating"], errors="coerce")
    invalid_row = _invalid_rows(df, _ranges(rating_range, present))
    invalid_sub = set(df.loc[invalid_row, "submission"])
    # a submission with an invalid rating goes first, so a valid repeat of it counts as first
    duplicate_row = (
        df[~df["submission"].isin(invalid_sub)]
        .duplicated(["subject", "item", "dimension"], keep="first")
        .reindex(df.index, fill_value=False)
    )
    clean = df[~df["submission"].isin(invalid_sub) & ~duplicate_row]

    prelim = mos_table(clean).set_index(["item", "dimension"])
    screened = clean[clean["dimension"].isin(screen_dimensions)]
    by_sub = dict(tuple(screened.groupby("submission", sort=False)))
    rows = []
    for sub, sub_rows in df.groupby("submission", sort=False):
        n_duplicate = int(duplicate_row[sub_rows.index].sum())
        srocc, std = math.nan, math.nan
        if sub in invalid_sub:
            reason = "invalid_rating"
        elif n_duplicate == len(sub_rows):
            reason = "duplicate"
        else:
            mine = by_sub.get(sub, screened.iloc[:0])
            srocc, std, enough = _submission_stats(mine, prelim, screen_dimensions, min_items)
            low = [
                name
                for name, value, limit in (
                    ("low_srocc", srocc, srocc_threshold),
                    ("low_std", std, std_threshold),
                )
                if not value > limit
            ]
            reason = ("+".join(low) or "ok") if enough else "too_few_items"
        rows.append(
            {
                "submission": sub,
                "subject": sub_rows["subject"].iloc[0],
                "n_ratings": len(sub_rows),
                "n_invalid": int(invalid_row[sub_rows.index].sum()),
                "n_duplicate": n_duplicate,
                "srocc": srocc,
                "std": std,
                "kept": reason == "ok",
                "reason": reason,
            }
        )
    report = pd.DataFrame(rows)
    kept_subs = set(report.loc[report["kept"], "submission"])
    mos = mos_table(clean[clean["submission"].isin(kept_subs)])
    _log_summary("YT-NTU-AVQ screening", report, "submissions", ratings, mos)
    return OpinionResult(mos, report)


def _log_summary(
    what: str, report: pd.DataFrame, unit: str, ratings: pd.DataFrame, mos: pd.DataFrame
) -> None:
    dropped = report.loc[~report["kept"], "reason"].value_counts().to_dict()
    log.info(
        "%s: kept %d of %d %s; dropped %s", what, report["kept"].sum(), len(report), unit, dropped
    )
    lost = set(ratings["item"]) - set(mos["item"])
    if lost:
        log.warning(
            "%s: %d item(s) have no rating left and no MOS: %s",
            what,
            len(lost),
            sorted(map(str, lost))[:5],
        )


def zscores(ratings: pd.DataFrame) -> pd.Series:
    """Per-subject (and per-dimension) z-scores ``(r - mean_subject) / std_subject``.

    Args:
        ratings: tidy table with ``subject``, ``dimension``, ``rating``.

    Returns:
        Z-scores aligned with ``ratings``' index; NaN for a subject with fewer than 2
        ratings or constant ratings (their scale is unknown).
    """
    _require(ratings, ("subject", "dimension", "rating"), "zscores")
    grouped = ratings.groupby(["subject", "dimension"])["rating"]
    std = grouped.transform("std")
    return (ratings["rating"] - grouped.transform("mean")) / std.where(std > 0)


def bt500_outliers(
    scores: pd.DataFrame, fraction: float = 0.05, balance: float = 0.3
) -> pd.DataFrame:
    """ITU-R BT.500 subject screening (Annex 2, the beta_2 kurtosis test).

    Per item j: mean ``u_j``, sample STD ``s_j`` and kurtosis ``beta_2 = m4 / m2^2`` (moments
    about the mean, divided by N). If ``2 <= beta_2 <= 4`` the scores count as normal and the
    limit is ``2 s_j``, else ``sqrt(20) s_j``. A subject's score ``>= u_j + limit`` adds one to
    its ``P``, ``<= u_j - limit`` one to its ``Q``. The subject is rejected if
    ``(P + Q) / n > fraction`` and ``|P - Q| / (P + Q) < balance``, n = its number of scores.
    Items whose scores are all equal (``s_j = 0``) are skipped: there is no spread to be out of.

    Args:
        scores: [subjects, items] table (subjects as index), NaN where not rated.
        fraction: share of outlying scores above which a subject may be rejected.
        balance: rejection needs the outliers on both sides: ``|P - Q| / (P + Q)`` below this.

    Returns:
        Per subject (index): ``P, Q, n, rejected``.
    """
    x = scores.to_numpy(dtype=np.float64)
    rated = ~np.isnan(x)
    n_j = rated.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(np.where(rated, x, np.nan), axis=0)
        dev = np.where(rated, x - mean, 0.0)
        m2 = (dev**2).sum(axis=0) / n_j
        m4 = (dev**4).sum(axis=0) / n_j
        std = np.sqrt((dev**2).sum(axis=0) / (n_j - 1))
        kurtosis = m4 / m2**2
    usable = (n_j >= 2) & (std > 0)
    limit = np.where((kurtosis >= 2) & (kurtosis <= 4), 2.0, math.sqrt(20.0)) * std
    with np.errstate(invalid="ignore"):
        high = rated & usable & (x >= mean + limit)
        low = rated & usable & (x <= mean - limit)
    p, q, n = high.sum(axis=1), low.sum(axis=1), rated.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rejected = ((p + q) / n > fraction) & (np.abs(p - q) / (p + q) < balance)
    return pd.DataFrame({"P": p, "Q": q, "n": n, "rejected": rejected}, index=scores.index)


def _sfqa_dimension(part: pd.DataFrame, screen: bool) -> tuple[list[dict], pd.DataFrame]:
    """Report rows and kept ratings of one dimension (``part`` has a ``z`` column)."""
    no_scale = set(part.loc[part["z"].isna(), "subject"])
    usable = part[~part["subject"].isin(no_scale)]
    wide = usable.pivot(index="subject", columns="item", values="z")
    if screen:
        flags = bt500_outliers(wide)
    else:
        flags = pd.DataFrame({"P": 0, "Q": 0, "n": wide.notna().sum(axis=1), "rejected": False})
    rows = []
    for subject, n in part.groupby("subject", sort=False).size().items():
        if subject in no_scale:
            rows.append({"subject": subject, "n": int(n), "P": 0, "Q": 0, "reason": "no_scale"})
            continue
        f = flags.loc[subject]
        reason = "bt500" if f["rejected"] else "ok"
        rows.append(
            {"subject": subject, "n": int(n), "P": int(f["P"]), "Q": int(f["Q"]), "reason": reason}
        )
    rejected = set(flags.index[flags["rejected"]])
    return rows, usable[~usable["subject"].isin(rejected)]


def sfqa_mos(ratings: pd.DataFrame, rescale: bool = True, screen: bool = True) -> OpinionResult:
    """Z-score MOS with BT.500 subject rejection (SFQA / LIVE practice), per dimension.

    Ratings that are NaN, and repeats of a (subject, item, dimension) after the first, are
    dropped with a log line before anything else.

    Args:
        ratings: tidy table with ``subject``, ``item``, ``rating`` and optionally
            ``dimension`` (one dimension ``overall`` if absent).
        rescale: map the mean z-score to 0-100 by ``(z + 3) * 100 / 6`` (z = +-3 -> 100 / 0).
        screen: apply :func:`bt500_outliers` on the z-scores of each dimension.

    Returns:
        MOS (mean z-score, or its 0-100 rescaling; ``std`` on the same scale) and a report per
        subject and dimension: ``subject, dimension, n, P, Q, kept, reason`` where reason is
        ``ok``, ``bt500`` or ``no_scale`` (fewer than 2 ratings, or all equal).
    """
    _require(ratings, ("subject", "item", "rating"), "sfqa_mos")
    df = ratings.copy()
    if "dimension" not in df.columns:
        df["dimension"] = "overall"
    df["rating"] = pd.to_numeric(df["rating"], errors="coerce")
    bad = df["rating"].isna() | df.duplicated(["subject", "item", "dimension"], keep="first")
    if bad.any():
        log.warning("sfqa_mos: dropped %d NaN or repeated rating(s)", bad.sum())
        df = df[~bad].copy()
    if df.empty:
        raise ValueError("sfqa_mos: no valid rating in the table")
    df["z"] = zscores(df)
    reports, kept_parts = [], []
    for dim, part in df.groupby("dimension", sort=True):
        rows, kept_part = _sfqa_dimension(part, screen)
        reports += [{**row, "dimension": dim} for row in rows]
        kept_parts.append(kept_part)
    report = pd.DataFrame(reports)
    report["kept"] = report["reason"] == "ok"
    report = report[["subject", "dimension", "n", "P", "Q", "kept", "reason"]]
    kept = pd.concat(kept_parts)
    mos = mos_table(kept.assign(rating=kept["z"]))
    if rescale:
        mos["mos"] = z_to_100(mos["mos"])
        mos["std"] = mos["std"] * 100.0 / 6.0
    _log_summary("SFQA screening", report, "subject-dimensions", df, mos)
    return OpinionResult(mos, report)


def z_to_100(z: np.ndarray | pd.Series | float) -> np.ndarray | pd.Series | float:
    """Z-score -> 0-100 as the LIVE / SFQA studies rescale: ``(z + 3) * 100 / 6``."""
    return (z + 3.0) * 100.0 / 6.0


def rescale_100(
    rating: np.ndarray | pd.Series | float, low: float, high: float
) -> np.ndarray | pd.Series | float:
    """Rating on the scale ``[low, high]`` -> 0-100 (linear): ``100 * (r - low) / (high - low)``."""
    if high <= low:
        raise ValueError(f"rating scale needs high > low, got [{low}, {high}]")
    return 100.0 * (rating - low) / (high - low)


def to_level(score: np.ndarray | pd.Series | float) -> np.ndarray:
    """0-100 score -> five levels 0..4 (bad .. excellent): ``min(4, floor(score / 20))``.

    Scores outside 0-100 are clipped first, so 100 is level 4 and -1 is level 0.
    """
    s = np.clip(np.asarray(score, dtype=np.float64), 0.0, 100.0)
    return np.minimum(4, np.floor(s / LEVEL_WIDTH)).astype(np.int64)


def reject_far_from_reference(
    ratings: pd.DataFrame,
    reference_levels: Mapping[Any, int],
    rating_range: Range = (0.0, 100.0),
    max_distance: int = 2,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop ratings of hidden-reference items that land ``max_distance`` or more levels away.

    A hidden reference is an item whose quality level is known beforehand (a pristine source,
    or a control with a known distortion); a rating far from that level shows inattention.
    Ratings are rescaled from ``rating_range`` to 0-100 and binned by :func:`to_level`.
    Items not in ``reference_levels`` are kept untouched.

    Args:
        ratings: tidy table with ``item`` and ``rating``.
        reference_levels: item -> expected level (0..4).
        rating_range: the rating scale ``(low, high)``.
        max_distance: a rating is dropped if ``|level - reference| >= max_distance``.

    Returns:
        ``(kept, dropped)``, both row subsets of ``ratings``.
    """
    _require(ratings, ("item", "rating"), "reject_far_from_reference")
    bad_levels = {k: v for k, v in reference_levels.items() if not 0 <= int(v) <= 4}
    if bad_levels:
        raise ValueError(f"reference levels must be 0..4, got {bad_levels}")
    ref = ratings["item"].map(reference_levels)
    level = pd.Series(to_level(rescale_100(ratings["rating"], *rating_range)), index=ratings.index)
    far = ref.notna() & ((level - ref).abs() >= max_distance)
    if far.any():
        log.info(
            "dropped %d rating(s) %d+ levels from their hidden reference", far.sum(), max_distance
        )
    return ratings[~far], ratings[far]
