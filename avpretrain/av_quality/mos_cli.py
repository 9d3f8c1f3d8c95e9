"""``avpretrain mos``: raw ratings -> the MOS table a converter reads, with each study's screening.

    avpretrain mos yt-ntu-avq ratings.csv --out meta_info.csv [--meta published_meta.csv]
    avpretrain mos sfqa ratings.csv --out sfqa.csv [--videos sources.csv]

Both read a raw rating table (:mod:`avpretrain.av_quality.rating_table`: one rating per row) and
optionally ``--reference`` hidden-reference levels, whose far-off ratings are dropped first
(:func:`~avpretrain.av_quality.opinion.reject_far_from_reference`).

``yt-ntu-avq`` (columns ``submission, item, dimension, rating`` + optional ``subject,
timestamp``; dimensions ``overall, video, audio`` on 1-5 and optionally ``av_weight`` on 0-100)
applies :func:`~avpretrain.av_quality.opinion.screen_yt_ntu_avq` and writes
``meta_info_YT-NTU-AVQ.csv``'s score columns (``seq_name, score_all, std_all, score_v, ...``)
for ``avpretrain convert-yt-ntu-avq``; ``--meta`` carries the other columns (categories,
summary) over from the published file.

``sfqa`` (columns ``subject, item, dimension, rating``; dimensions ``visual, consistency``; the
item is the video file name) applies :func:`~avpretrain.av_quality.opinion.sfqa_mos` (z-scores,
BT.500 rejection, 0-100) and writes the layout of ``avpretrain convert-sfqa``. Each video's
``source_image, source_audio`` (and optional ``method``) come from columns of the ratings table
or from ``--videos``, a table with ``video`` and those columns.

Every command writes the per-rater screening report beside the MOS table
(``<out stem>_screening.csv``) and prints raters kept and rejected; an item whose every rating
was rejected in a dimension the converter needs is left out and named in the summary.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from avpretrain.av_quality.opinion import (
    YT_NTU_AVQ_RANGES,
    YT_NTU_AVQ_SCREENED,
    OpinionResult,
    reject_far_from_reference,
    screen_yt_ntu_avq,
    sfqa_mos,
)
from avpretrain.av_quality.rating_table import read_ratings, read_reference
from avpretrain.data.tables import read_table

# dimension -> (MOS column, STD column) of meta_info_YT-NTU-AVQ.csv
YT_COLUMNS = {
    "overall": ("score_all", "std_all"),
    "video": ("score_v", "std_v"),
    "audio": ("score_a", "std_a"),
    "av_weight": ("av_weight", "std_av_weight"),
}
SFQA_DIMENSIONS = ("visual", "consistency")
SFQA_SOURCES = ("source_image", "source_audio")


def drop_far_ratings(
    ratings: pd.DataFrame,
    reference: Mapping[str | None, Mapping[str, int]],
    ranges: Mapping[str, tuple[float, float]],
) -> tuple[pd.DataFrame, int]:
    """Ratings without those far from their item's hidden reference level, per dimension.

    Args:
        ratings: tidy table with ``item``, ``dimension``, ``rating``.
        reference: ``{dimension or None (all): {item: level}}`` (:func:`read_reference`).
        ranges: rating scale of each dimension with references (others are not checked).

    Returns:
        The kept rows and how many were dropped.
    """
    kept, dropped = [], 0
    for dimension, part in ratings.groupby("dimension", sort=False):
        levels = {**reference.get(None, {}), **reference.get(dimension, {})}
        if not levels or dimension not in ranges:
            kept.append(part)
            continue
        ok, far = reject_far_from_reference(part, levels, ranges[dimension])
        kept.append(ok)
        dropped += len(far)
    return pd.concat(kept).sort_index(), dropped


def _complete(mos: pd.DataFrame, needed: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Wide MOS/STD/N per item, and the items lacking a needed dimension (left out)."""
    wide = mos.pivot(index="item", columns="dimension", values=["mos", "std", "n"])
    have = wide["mos"].reindex(columns=list(needed)).notna().all(axis=1)
    return wide[have], sorted(map(str, wide.index[~have]))


def _fmt(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.6g}"


def _write_csv(rows: list[dict[str, str]], header: list[str], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)


def _yt_rows(wide: pd.DataFrame, meta: Path | None) -> tuple[list[dict[str, str]], list[str]]:
    dims = [d for d in YT_COLUMNS if d in wide["mos"].columns]
    rows = {}
    for item in wide.index:
        row = {"seq_name": str(item)}
        for dim in dims:
            mos_col, std_col = YT_COLUMNS[dim]
            row[mos_col], row[std_col] = (
                _fmt(wide["mos"].at[item, dim]),
                _fmt(wide["std"].at[item, dim]),
            )
        rows[str(item)] = row
    header = ["seq_name"] + [c for d in dims for c in YT_COLUMNS[d]]
    if meta is not None:
        table = read_table(meta, ("seq_name",), "YT-NTU-AVQ's meta_info CSV")
        extra = [c for c in (table[0][1] if table else {}) if c not in header]
        for _where, meta_row in table:
            name = (meta_row["seq_name"] or "").strip()
            if name in rows:
                rows[name].update({c: meta_row[c] or "" for c in extra})
        header += extra
    return list(rows.values()), header


def _sources(ratings: pd.DataFrame, videos: Path | None) -> dict[str, dict[str, str]]:
    """Each video's ``source_image``, ``source_audio`` and ``method``.

    From ``--videos`` or the ratings table's columns (which must agree across a video's rows).
    """
    out: dict[str, dict[str, str]] = {}
    if videos is not None:
        for where, row in read_table(
            videos, ("video", *SFQA_SOURCES), "video, source_image, source_audio"
        ):
            fields = {c: (row.get(c) or "").strip() for c in (*SFQA_SOURCES, "method")}
            for column in ("video", *SFQA_SOURCES):
                if not (row[column] or "").strip():
                    raise ValueError(f"{where}: column {column} is empty")
            out[row["video"].strip()] = fields
        return out
    missing = [c for c in SFQA_SOURCES if c not in ratings.columns]
    if missing:
        raise ValueError(
            f"the ratings table lacks {missing} and no --videos table names the sources"
        )
    for row in ratings.itertuples(index=False):
        fields = {c: getattr(row, c, "") for c in (*SFQA_SOURCES, "method")}
        for column in SFQA_SOURCES:
            if not fields[column]:
                raise ValueError(f"{row.where}: column {column} is empty")
        first = out.setdefault(row.item, fields)
        if first != fields:
            raise ValueError(
                f"{row.where}: video {row.item} has sources {fields}, elsewhere {first}"
            )
    return out


def _report(result: OpinionResult, unit: str, out: Path, far: int) -> Path:
    path = out.with_name(f"{out.stem}_screening.csv")
    result.report.to_csv(path, index=False)
    report = result.report
    rejected = report.loc[~report["kept"], "reason"].value_counts()
    reasons = ", ".join(f"{n} {reason}" for reason, n in rejected.items()) or "none"
    print(
        f"screening: kept {int(report['kept'].sum())} of {len(report)} {unit}; rejected: {reasons}"
    )
    if far:
        print(f"hidden references: dropped {far} rating(s) 2+ levels from their reference")
    return path


def _summary(
    written: int, out: Path, report: Path, left_out: list[str], needed: Sequence[str]
) -> None:
    shown = ", ".join(left_out[:5]) + (", ..." if len(left_out) > 5 else "")
    lost = f"; {len(left_out)} item(s) left out, without a kept rating in one of {list(needed)}: {shown}"
    print(
        f"MOS of {written} items written to {out} (screening report {report}){lost if left_out else ''}"
    )


def run_yt_ntu_avq(args: argparse.Namespace) -> int:
    """``avpretrain mos yt-ntu-avq``: screen, compute the MOS and write the meta_info table."""
    ratings = read_ratings(args.ratings, ("submission", "dimension"), list(YT_COLUMNS))
    far = 0
    if args.reference:
        ranges = {d: YT_NTU_AVQ_RANGES[d] for d in YT_NTU_AVQ_SCREENED}
        ratings, far = drop_far_ratings(ratings, read_reference(args.reference), ranges)
    result = screen_yt_ntu_avq(
        ratings.drop(columns="where"),
        srocc_threshold=args.srocc,
        std_threshold=args.std,
        min_items=args.min_items,
    )
    out = Path(args.out)
    wide, left_out = _complete(result.mos, YT_NTU_AVQ_SCREENED)
    rows, header = _yt_rows(wide, Path(args.meta) if args.meta else None)
    _write_csv(rows, header, out)
    report = _report(result, "submissions", out, far)
    _summary(len(rows), out, report, left_out, YT_NTU_AVQ_SCREENED)
    return 0 if rows else 1


def run_sfqa(args: argparse.Namespace) -> int:
    """``avpretrain mos sfqa``: z-score MOS with BT.500 rejection, written in the SFQA layout."""
    ratings = read_ratings(
        args.ratings, ("subject", "dimension"), SFQA_DIMENSIONS, extra=(*SFQA_SOURCES, "method")
    )
    sources = _sources(ratings, Path(args.videos) if args.videos else None)
    far = 0
    if args.reference:
        ranges = dict.fromkeys(SFQA_DIMENSIONS, tuple(args.rating_range))
        ratings, far = drop_far_ratings(ratings, read_reference(args.reference), ranges)
    tidy = ratings[["subject", "item", "dimension", "rating"]]
    result = sfqa_mos(tidy, rescale=not args.no_rescale, screen=not args.no_screen)
    out = Path(args.out)
    wide, left_out = _complete(result.mos, SFQA_DIMENSIONS)
    unknown = sorted(set(map(str, wide.index)) - set(sources))
    if unknown:
        raise ValueError(f"{args.videos}: no sources for video(s) {unknown[:5]}")
    rows = [
        {
            "video": str(item),
            **sources[str(item)],
            **{f"{d}_mos": _fmt(wide["mos"].at[item, d]) for d in SFQA_DIMENSIONS},
            **{f"{d}_std": _fmt(wide["std"].at[item, d]) for d in SFQA_DIMENSIONS},
        }
        for item in wide.index
    ]
    header = [
        "video",
        *SFQA_SOURCES,
        "visual_mos",
        "consistency_mos",
        "method",
        "visual_std",
        "consistency_std",
    ]
    _write_csv(rows, header, out)
    report = _report(result, "subject-dimensions", out, far)
    _summary(len(rows), out, report, left_out, SFQA_DIMENSIONS)
    return 0 if rows else 1


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``avpretrain mos``."""
    p = argparse.ArgumentParser(
        prog="avpretrain mos",
        description="Raw ratings -> MOS table for convert-yt-ntu-avq / convert-sfqa, with the "
        "study's rater screening.",
    )
    sub = p.add_subparsers(dest="design", required=True)
    yt = sub.add_parser("yt-ntu-avq", help="crowdsourced submissions: SROCC/STD screening")
    yt.add_argument(
        "ratings", help="CSV: submission, item, dimension, rating[, subject, timestamp]"
    )
    yt.add_argument("--out", required=True, help="meta_info CSV to write")
    yt.add_argument("--meta", help="published meta_info CSV: its other columns are carried over")
    yt.add_argument("--srocc", type=float, default=0.5, help="keep submissions above this SROCC")
    yt.add_argument("--std", type=float, default=0.5, help="keep submissions above this rating STD")
    yt.add_argument("--min-items", type=int, default=3, help="fewest items per screened dimension")
    yt.set_defaults(run=run_yt_ntu_avq)
    sf = sub.add_parser("sfqa", help="lab study: z-scores and BT.500 subject rejection")
    sf.add_argument("ratings", help="CSV: subject, item, dimension, rating[, source_image, ...]")
    sf.add_argument("--out", required=True, help="SFQA-layout CSV to write")
    sf.add_argument("--videos", help="CSV: video, source_image, source_audio[, method]")
    sf.add_argument(
        "--rating-range", type=float, nargs=2, default=(0.0, 100.0), metavar=("LOW", "HIGH")
    )
    sf.add_argument("--no-screen", action="store_true", help="keep every subject")
    sf.add_argument("--no-rescale", action="store_true", help="write mean z-scores, not 0-100")
    sf.set_defaults(run=run_sfqa)
    for parser in (yt, sf):
        parser.add_argument(
            "--reference", help="CSV: item, level (0-4)[, dimension]: hidden references"
        )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain mos``; 0 on success, 1 if no item got a MOS, 2 on bad input."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"avpretrain mos {args.design}: error: {err}", file=sys.stderr)
        return 2
