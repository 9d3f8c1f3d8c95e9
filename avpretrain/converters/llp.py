"""LLP (audio-visual video parsing) annotations -> an ``avpretrain ingest`` manifest.

Reads the files of YapengTian/AVVP-ECCV20 ``data/``, tab-separated with a header row:

- ``AVVP_train.csv``, ``AVVP_val_pd.csv``, ``AVVP_test_pd.csv`` (weak labels): ``filename``,
  ``event_labels`` (class names joined by ``,``);
- ``AVVP_eval_audio.csv``, ``AVVP_eval_visual.csv`` (dense labels of the val and test videos):
  ``filename``, ``onset``, ``offset``, ``event_labels`` (one class), integer seconds.

A ``filename`` is ``<YouTube id>_<start>_<end>`` of a 10 s excerpt. The official download script
(``scripts/download_dataset.py``) saves the *trimmed* excerpt as ``<filename[:11]>.mp4``, so by
default a clip is seconds 0-10 of the video named by the first 11 characters (the YouTube id;
a handful of LLP names are mangled and shorter, and get the same treatment). ``untrimmed=True``
takes the window from the name instead, for full-length downloads named by YouTube id.

Output: one JSON line per video of the weak file, ``id`` = the LLP filename, ``labels`` = class
indices in :data:`LLP_CLASSES` order, ``annotations`` = ``{"weak": [...]}`` plus
``"audio_segments"`` / ``"visual_segments"`` (``[class, onset, offset]`` rows, file order,
kept verbatim - onset == offset rows included) when the dense files are given.
:func:`avpretrain.metrics.parsing.segments_to_matrix` turns those rows into the [25, 10] ground
truth the official evaluation builds.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from avpretrain.converters.common import (
    MANIFEST_FLAGS,
    VideoFinder,
    log_missing,
    run_function,
    write_jsonl,
)
from avpretrain.data.tables import read_table

log = logging.getLogger(__name__)

# main_avvp.py / dataloader.py ``categories``, in the official order (class index = position)
LLP_CLASSES = (
    "Speech",
    "Car",
    "Cheering",
    "Dog",
    "Cat",
    "Frying_(food)",
    "Basketball_bounce",
    "Fire_alarm",
    "Chainsaw",
    "Cello",
    "Banjo",
    "Singing",
    "Chicken_rooster",
    "Violin_fiddle",
    "Vacuum_cleaner",
    "Baby_laughter",
    "Accordion",
    "Lawn_mower",
    "Motorcycle",
    "Helicopter",
    "Acoustic_guitar",
    "Telephone_bell_ringing",
    "Baby_cry_infant_cry",
    "Blender",
    "Clapping",
)
CLASS_INDEX = {name: i for i, name in enumerate(LLP_CLASSES)}
CLIP_SECONDS = 10.0


def parse_filename(name: str) -> tuple[str, int, int]:
    """``(YouTube id, start, end)`` of an LLP filename such as ``"BjCEufrlXm4_20_30"``.

    Raises:
        ValueError: the name does not end in ``_<start>_<end>``.
    """
    parts = name.rsplit("_", 2)
    if len(parts) != 3 or not parts[0] or not (parts[1].isdigit() and parts[2].isdigit()):
        raise ValueError(f"LLP filename {name!r} does not end in _<start>_<end>")
    return parts[0], int(parts[1]), int(parts[2])


def _parsed_id(name: str) -> list[str]:
    """The YouTube id parsed from ``name`` (as a fallback video name), or nothing."""
    try:
        return [parse_filename(name)[0]]
    except ValueError:
        return []


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[str, dict[str, str]]]:
    """(``file:line``, row) pairs of a tab-separated file with a header, checking its columns."""
    expected = f"a tab-separated LLP file with columns {list(columns)}"
    return read_table(path, columns, expected, delimiter="\t")


def _class(name: str, where: str) -> int:
    if name not in CLASS_INDEX:
        raise ValueError(f"{where}: unknown LLP class {name!r}")
    return CLASS_INDEX[name]


def _seconds(value: str, where: str) -> int:
    try:
        return int(float(value))  # pandas + int() in the official code: whole seconds
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where}: {value!r} is not a time in seconds") from None


def read_weak(path: str | Path) -> dict[str, list[int]]:
    """Weak labels per LLP filename (file order), as sorted class indices."""
    out: dict[str, list[int]] = {}
    for where, row in _rows(Path(path), ("filename", "event_labels")):
        name = (row["filename"] or "").strip()
        if not name:
            raise ValueError(f"{where}: empty filename")
        if name in out:
            raise ValueError(f"{where}: {name} listed twice")
        labels = [x.strip() for x in (row["event_labels"] or "").split(",") if x.strip()]
        out[name] = sorted({_class(x, where) for x in labels})
    return out


def read_dense(path: str | Path) -> dict[str, list[list[int]]]:
    """``[class, onset, offset]`` rows per LLP filename, in file order."""
    out: dict[str, list[list[int]]] = {}
    for where, row in _rows(Path(path), ("filename", "onset", "offset", "event_labels")):
        name = (row["filename"] or "").strip()
        if not name:
            raise ValueError(f"{where}: empty filename")
        cls = _class((row["event_labels"] or "").strip(), where)
        segment = [cls, _seconds(row["onset"], where), _seconds(row["offset"], where)]
        out.setdefault(name, []).append(segment)
    return out


def convert(
    weak_csv: str | Path,
    video_dir: str | Path,
    out_jsonl: str | Path,
    audio_csv: str | Path | None = None,
    visual_csv: str | Path | None = None,
    untrimmed: bool = False,
    check_videos: bool = True,
) -> dict[str, Any]:
    """Write the ingest manifest of one LLP split.

    Args:
        weak_csv: ``AVVP_train.csv``, ``AVVP_val_pd.csv`` or ``AVVP_test_pd.csv``.
        video_dir: folder of the videos (searched recursively by file stem).
        out_jsonl: manifest to write.
        audio_csv: ``AVVP_eval_audio.csv`` (val / test splits), or None.
        visual_csv: ``AVVP_eval_visual.csv``, or None.
        untrimmed: videos are full YouTube downloads: cut the window named in the filename.
        check_videos: skip (and log) videos not found; False writes guessed paths unchecked.

    Returns:
        Summary: ``videos`` written, ``missing_videos``, segment counts, ``dense_other_videos``
        (dense rows of videos outside this split, ignored) and ``out``.
    """
    weak = read_weak(weak_csv)
    dense = {
        key: read_dense(path)
        for key, path in (("audio_segments", audio_csv), ("visual_segments", visual_csv))
        if path is not None
    }
    finder = VideoFinder(video_dir, check_videos)
    rows, missing = [], []
    for name, labels in weak.items():
        if untrimmed:
            youtube_id, start, end = parse_filename(name)
            path = finder.find(youtube_id, name)
        else:
            start, end = 0, CLIP_SECONDS
            path = finder.find(name[:11], *_parsed_id(name), name)
        if path is None:
            missing.append(name)
            continue
        annotations: dict[str, Any] = {"weak": labels}
        annotations.update({key: rows_.get(name, []) for key, rows_ in dense.items()})
        row = {"path": str(path), "id": name, "start": float(start), "end": float(end)}
        rows.append({**row, "labels": labels, "annotations": annotations})
    log_missing(missing, finder.video_dir)
    count = write_jsonl(rows, out_jsonl)
    summary: dict[str, Any] = {"videos": count, "missing_videos": len(missing)}
    for key, by_video in dense.items():
        summary[key] = sum(len(by_video.get(name, [])) for name in weak)
    summary["dense_other_videos"] = sum(
        len(segments)
        for by_video in dense.values()
        for n, segments in by_video.items()
        if n not in weak
    )
    summary["out"] = str(out_jsonl)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain convert-llp``; 0 on success, 1 if no video was found, 2 on bad input."""
    description = "LLP annotation CSVs -> JSON Lines manifest for `avpretrain ingest`."
    return run_function("convert-llp", convert, description, "videos", argv, MANIFEST_FLAGS)
