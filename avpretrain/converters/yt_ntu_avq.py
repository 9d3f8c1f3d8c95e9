"""YT-NTU-AVQ metadata -> an ``avpretrain ingest`` manifest for the ``av_quality`` task.

Reads ``meta_info_YT-NTU-AVQ.csv`` of renyu12/YT-NTU-AVQ (``dataset/``; the videos are on
Hugging Face, ``ntu-avqa/YT-NTU-AVQ``), comma-separated with a header:

    seq_name        file name, e.g. ``Animation_1.mp4``
    score_all       overall audio-visual MOS (1-5 slider)     std_all        its STD
    score_v         video-only MOS                            std_v
    score_a         audio-only MOS                            std_a
    av_weight       relative audio/video weight (0-100)       std_av_weight
    pretest, manual_selected   0/1 flags
    audio_category_id   ``|``-joined ids (``0|1``)            audio_class   ``|``-joined names
    video_category_id   one id                                video_class   its name
    video_summary   one-sentence description

Output: one JSON line per sequence, ``id`` = the file stem, ``caption`` = ``video_summary``,
``category`` = ``video_class``, ``start`` 0 and ``end`` ``clip_seconds`` (one clip per
sequence, since the MOS scores the sequence; ``clip_seconds`` None or 0 leaves the cutting to
ingest, every clip then carrying the sequence's scores), and ``annotations``::

    {"mos": {"overall", "video", "audio", "av_weight"},
     "std": {"overall", "video", "audio", "av_weight"},
     "audio_category_id": [0, 1], "video_category_id": 9,
     "audio_class": ["Speech", "Music"], "video_class": "Animation and gaming",
     "pretest": 0, "manual_selected": 0, "fold": 3}

``fold`` (0..k-1) is a deterministic k-fold split by ``seed``. The published file has no
source-content column (each sequence is its own user-generated video), so by default every
sequence is its own group; ``group_column`` names a column whose equal values must share a
fold (e.g. a source id for a database of distorted versions of common sources). Folds are
dealt over all rows of the file, before missing videos are left out, so a partial download
gets the same folds as the full one.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from avpretrain.converters.common import (
    MANIFEST_FLAGS,
    VideoFinder,
    log_missing,
    run_function,
    write_jsonl,
)
from avpretrain.data.folds import assign_folds
from avpretrain.data.tables import read_table

log = logging.getLogger(__name__)

REQUIRED = ("seq_name", "score_all", "score_v", "score_a")
# annotation key -> (CSV column of the MOS, CSV column of its STD)
SCORES = {
    "overall": ("score_all", "std_all"),
    "video": ("score_v", "std_v"),
    "audio": ("score_a", "std_a"),
    "av_weight": ("av_weight", "std_av_weight"),
}
CLIP_SECONDS = 10.0


def _float(value: str | None, column: str, where: str) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"{where}: {column} {value!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{where}: {column} {value!r} is not finite")
    return x


def _int(value: str | None, column: str, where: str) -> int | None:
    x = _float(value, column, where)
    if x is None:
        return None
    if not x.is_integer():
        raise ValueError(f"{where}: {column} {value!r} is not an integer")
    return int(x)


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split("|") if part.strip()]


def read_meta(path: str | Path) -> list[tuple[str, dict[str, str]]]:
    """(``file:line``, row) pairs of the metadata CSV, checking the required columns."""
    return read_table(path, REQUIRED, "YT-NTU-AVQ's meta_info CSV")


def annotations_of(row: dict[str, str], where: str) -> dict[str, Any]:
    """The ``annotations`` object of one metadata row (without ``fold``)."""
    out: dict[str, Any] = {"mos": {}, "std": {}}
    for key, (mos_col, std_col) in SCORES.items():
        for part, column in (("mos", mos_col), ("std", std_col)):
            value = _float(row.get(column), column, where)
            if value is None and column in REQUIRED:
                raise ValueError(f"{where}: empty {column}")
            if value is not None:
                out[part][key] = value
    if row.get("audio_category_id") is not None:
        ids = _split(row["audio_category_id"])
        out["audio_category_id"] = [_int(i, "audio_category_id", where) for i in ids]
    for column in ("video_category_id", "pretest", "manual_selected"):
        value = _int(row.get(column), column, where)
        if value is not None:
            out[column] = value
    if row.get("audio_class") is not None:
        out["audio_class"] = _split(row["audio_class"])
    if (row.get("video_class") or "").strip():
        out["video_class"] = row["video_class"].strip()
    return out


def convert(
    meta_csv: str | Path,
    video_dir: str | Path,
    out_jsonl: str | Path,
    folds: int = 5,
    seed: int = 0,
    group_column: str | None = None,
    clip_seconds: float | None = CLIP_SECONDS,
    check_videos: bool = True,
) -> dict[str, Any]:
    """Write the ``av_quality`` ingest manifest of YT-NTU-AVQ.

    Args:
        meta_csv: ``meta_info_YT-NTU-AVQ.csv``.
        video_dir: folder of the sequences (searched recursively by file stem).
        out_jsonl: manifest to write.
        folds: number of cross-validation folds.
        seed: fold shuffling seed.
        group_column: column whose equal values share a fold; None: one group per sequence.
        clip_seconds: the one clip cut per sequence, ``[0, clip_seconds]``; None (or 0) lets
            ingest cut consecutive clips.
        check_videos: skip (and log) videos not found; False writes guessed paths unchecked.

    Returns:
        Summary: ``videos`` written, ``missing_videos``, ``fold_sizes`` (written rows per
        fold) and ``out``.
    """
    rows = read_meta(meta_csv)
    if not rows:
        raise ValueError(f"{meta_csv}: no rows")
    if group_column is not None and group_column not in rows[0][1]:
        raise ValueError(f"{meta_csv}: no column {group_column!r} to group folds by")
    names = [(row.get("seq_name") or "").strip() for _, row in rows]
    seen: dict[str, str] = {}
    for (where, _), name in zip(rows, names, strict=True):
        if not name:
            raise ValueError(f"{where}: empty seq_name")
        if name in seen:
            raise ValueError(f"{where}: {name} already listed at {seen[name]}")
        seen[name] = where
    parsed = [annotations_of(row, where) for where, row in rows]
    groups = names if group_column is None else [r[group_column].strip() for _, r in rows]
    fold_of = assign_folds(groups, folds, seed)

    finder = VideoFinder(video_dir, check_videos)
    out_rows, missing = [], []
    for (_, row), name, ann, fold in zip(rows, names, parsed, fold_of, strict=True):
        annotations = {**ann, "fold": fold}
        stem = Path(name).stem
        path = finder.find(stem)
        if path is None:
            missing.append(name)
            continue
        entry: dict[str, Any] = {"path": str(path), "id": stem}
        if clip_seconds:  # None, or 0 from the command line: ingest cuts the clips
            entry.update(start=0.0, end=float(clip_seconds))
        if (row.get("video_summary") or "").strip():
            entry["caption"] = row["video_summary"].strip()
        if "video_class" in annotations:
            entry["category"] = annotations["video_class"]
        out_rows.append({**entry, "annotations": annotations})
    log_missing(missing, finder.video_dir)
    count = write_jsonl(out_rows, out_jsonl)
    sizes = [0] * folds
    for out_row in out_rows:
        sizes[out_row["annotations"]["fold"]] += 1
    return {
        "videos": count,
        "missing_videos": len(missing),
        "fold_sizes": sizes,
        "out": str(out_jsonl),
    }


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain convert-yt-ntu-avq``.

    Returns 0 on success, 1 if no video was found, 2 on bad input.
    """
    description = (
        "YT-NTU-AVQ meta_info CSV -> JSON Lines manifest for `avpretrain ingest` (task "
        "av_quality: MOS, STD and categories as annotations, plus a k-fold split)."
    )
    return run_function("convert-yt-ntu-avq", convert, description, "videos", argv, MANIFEST_FLAGS)
