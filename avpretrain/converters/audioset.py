"""AudioSet segment CSVs -> a multi-label ``avpretrain ingest`` manifest (classification).

Reads the files of the AudioSet download page (research.google.com/audioset/download.html),
as CAV-MAE's and AST's data preparation do:

- ``balanced_train_segments.csv``, ``unbalanced_train_segments.csv``, ``eval_segments.csv``:
  three lines starting with ``#`` (the last: ``# YTID, start_seconds, end_seconds,
  positive_labels``), then one segment per line, fields separated by ``", "``, the label MIDs
  quoted and comma-joined: ``--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"``.
- ``class_labels_indices.csv`` (header ``index,mid,display_name``; 527 rows): the class index
  of each MID, the column CAV-MAE's ``make_index_dict`` reads.

Output: one JSON line per segment, ``id`` = the YouTube id (AudioSet has one segment per video
and file), ``start`` / ``end`` (:mod:`avpretrain.converters.youtube`; a segment may be shorter
than 10 s at the end of its video), ``labels`` = the class indices in the file's order
(duplicates dropped). Train with ``multilabel: true`` and ``num_classes: 527``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from avpretrain.converters.common import MANIFEST_FLAGS, log_missing, run_function, write_jsonl
from avpretrain.converters.youtube import ClipFiles, csv_rows, seconds
from avpretrain.data.tables import read_table

log = logging.getLogger(__name__)

DEFAULT_PATTERN = "{ytid}.mp4"
INDEX_COLUMNS = ("index", "mid", "display_name")


def read_class_indices(path: str | Path) -> dict[str, tuple[int, str]]:
    """``{mid: (index, display_name)}`` from ``class_labels_indices.csv``.

    Raises:
        ValueError: a missing column, a non-integer or repeated index, or a repeated MID, naming
            the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: class index file not found")
    out: dict[str, tuple[int, str]] = {}
    seen: set[int] = set()
    expected = f"AudioSet's class_labels_indices.csv ({', '.join(INDEX_COLUMNS)})"
    for where, row in read_table(path, INDEX_COLUMNS, expected):
        mid = (row["mid"] or "").strip()
        try:
            index = int(row["index"])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: index {row['index']!r} is not an integer") from None
        if not mid or mid in out or index in seen:
            raise ValueError(f"{where}: empty or repeated mid {mid!r} / index {index}")
        seen.add(index)
        out[mid] = (index, (row["display_name"] or "").strip())
    if sorted(seen) != list(range(len(seen))):
        raise ValueError(f"{path}: indices are not 0..{len(seen) - 1}")
    return out


def read_segments(
    path: str | Path, classes: dict[str, tuple[int, str]]
) -> list[tuple[str, float, float, list[int]]]:
    """``(ytid, start, end, class indices)`` of every segment, in file order.

    Raises:
        ValueError: naming the file and line of a row without four fields, with bad times, or
            with a MID missing from ``classes``.
    """
    segments = []
    for where, fields in csv_rows(path, comments=True):
        if len(fields) != 4:
            raise ValueError(
                f"{where}: {len(fields)} fields, expected 4 (YTID, start_seconds, end_seconds, "
                f"positive_labels): {fields}"
            )
        ytid, start_text, end_text, mids = fields
        if not ytid:
            raise ValueError(f"{where}: empty YTID")
        start = seconds(start_text, "start_seconds", where)
        end = seconds(end_text, "end_seconds", where)
        if end <= start:
            raise ValueError(f"{where}: end_seconds {end_text} is not after start {start_text}")
        labels: list[int] = []
        for mid in (m.strip() for m in mids.split(",")):
            if not mid:
                continue
            if mid not in classes:
                raise ValueError(
                    f"{where}: unknown label MID {mid!r} (not in the class index file)"
                )
            if classes[mid][0] not in labels:
                labels.append(classes[mid][0])
        if not labels:
            raise ValueError(f"{where}: no positive label")
        segments.append((ytid, start, end, labels))
    return segments


def convert(
    segments_csv: str | Path,
    class_index_csv: str | Path,
    video_dir: str | Path,
    out_jsonl: str | Path,
    pattern: str = DEFAULT_PATTERN,
    untrimmed: bool = False,
    check_videos: bool = True,
) -> dict[str, Any]:
    """Write the multi-label ingest manifest of one AudioSet segment file.

    Args:
        segments_csv: ``balanced_train_segments.csv``, ``eval_segments.csv``, ...
        class_index_csv: ``class_labels_indices.csv``.
        video_dir: folder of the downloaded videos.
        out_jsonl: manifest to write.
        pattern: file name of a segment (:class:`~avpretrain.converters.youtube.ClipFiles`);
            default ``{ytid}.mp4``.
        untrimmed: files are whole videos: ask ingest for the segment's own seconds.
        check_videos: leave out (and log) segments whose video is missing.

    Returns:
        Summary: ``clips`` written, ``missing_videos``, ``classes`` (count) and ``out``.
    """
    classes = read_class_indices(class_index_csv)
    segments = read_segments(segments_csv, classes)
    files = ClipFiles(video_dir, pattern, untrimmed, check_videos)
    rows, missing = [], []
    for ytid, start, end, labels in segments:
        path = files.locate(ytid, start, end)
        if path is None:
            missing.append(ytid)
            continue
        clip_start, clip_end = files.window(start, end)
        rows.append(
            {"path": str(path), "id": ytid, "start": clip_start, "end": clip_end, "labels": labels}
        )
    log_missing(missing, files.video_dir)
    count = write_jsonl(rows, out_jsonl)
    return {
        "clips": count,
        "missing_videos": len(missing),
        "classes": len(classes),
        "out": str(out_jsonl),
    }


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain convert-audioset``.

    Returns 0 on success, 1 if no clip was written, 2 on bad input.
    """
    description = "AudioSet segment CSV -> multi-label JSON Lines manifest for `avpretrain ingest`."
    aliases = {**MANIFEST_FLAGS, "class-index": "class_index_csv"}
    return run_function("convert-audioset", convert, description, "clips", argv, aliases)
