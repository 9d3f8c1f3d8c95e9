"""What to ingest: a folder of videos, or a manifest (CSV or JSON Lines) naming them.

Manifest fields (CSV columns or JSON keys); only ``path`` is required::

    path       video file, relative to the manifest's folder unless absolute (``~`` expanded)
    id         video id stored with the row's clips (``video_id`` also accepted); default: the
               file stem
    start, end clip timestamps in seconds; both missing: the video is cut into consecutive clips;
               one missing: ``start`` defaults to 0, ``end`` to ``start`` + the clip length
    caption    free text
    category   primary class name
    labels     class indices or names: a JSON list, or one string separated by ';'
    annotations  task annotations (JSON object), copied into the clip's JSON as ``annotations``

Rows naming the same file become clips of one video (whatever their ids), so it is decoded once. Labels given as
names are turned into indices of the sorted list of all names (stored as ``classes``).

A malformed row is refused with its file and line: a CSV row with more or fewer fields than the
header (a file cut short), a missing ``path``, a value of the wrong type. A row identical to an
earlier one is written once, with a warning naming both lines; unknown columns are warned about.
A UTF-8 byte-order mark (as spreadsheet programs write) is accepted.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .flv .mpg .mpeg .ts .mts .m2ts .wmv .3gp .ogv".split()
)
MANIFEST_SUFFIXES = (".csv", ".jsonl", ".ndjson")
FIELDS = frozenset("path id video_id start end caption category labels annotations".split())

logger = logging.getLogger("avpretrain.ingest")


@dataclass(frozen=True)
class ClipSpec:
    """One requested clip.

    ``start`` and ``end`` None mean "cut the whole video"; ``video_id`` None means the video's own
    id.
    """

    start: float | None = None
    end: float | None = None
    caption: str | None = None
    category: str | None = None
    labels: tuple[Any, ...] = ()
    video_id: str | None = None
    annotations: dict[str, Any] | None = None


@dataclass
class VideoSource:
    """A video to ingest and the clips asked of it."""

    path: str
    video_id: str
    clips: list[ClipSpec] = field(default_factory=list)


def is_manifest(path: str | Path) -> bool:
    """A file with a manifest suffix (``.csv``, ``.jsonl``, ``.ndjson``)."""
    return Path(path).suffix.lower() in MANIFEST_SUFFIXES


def find_videos(folder: str | Path) -> list[VideoSource]:
    """Every video file under ``folder`` (recursive, by extension), sorted by relative path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of videos (or pass a manifest)")
    paths = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()
    )
    return [VideoSource(str(p), p.stem, [ClipSpec()]) for p in paths]


def _csv_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs of a CSV manifest.

    Rows of another length than the header are refused.
    """
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames:
            reader.fieldnames = [name.strip() for name in reader.fieldnames]
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise ValueError(
                f"{path}: CSV manifest needs a 'path' column; its header is "
                f"{reader.fieldnames} (columns are separated by commas)"
            )
        _warn_unknown(path, reader.fieldnames)
        rows = []
        for row in reader:
            extra = cast("list[str]", row.get(None, []))  # the fields beyond the header
            values = [v for k, v in row.items() if k is not None] + extra
            if not any((v or "").strip() for v in values):
                continue  # a row of blanks (spaces, or only commas) holds nothing to lose
            fields = len(reader.fieldnames) + len(row.get(None, []))
            fields -= sum(value is None for value in row.values())
            if fields != len(reader.fieldnames):
                raise ValueError(
                    f"{path}:{reader.line_num}: row has {fields} fields, the header has "
                    f"{len(reader.fieldnames)} (a row cut short, or a comma inside an unquoted "
                    "field?)"
                )
            rows.append((reader.line_num, row))
        return rows


def _warn_unknown(path: Path, names: Any) -> None:
    unknown = sorted(set(names) - FIELDS)
    if unknown:
        logger.warning(
            "%s: ignoring unknown fields %s (known: %s)", path, unknown, ", ".join(sorted(FIELDS))
        )


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs of a CSV or JSON Lines manifest."""
    try:
        return _csv_rows(path) if path.suffix.lower() == ".csv" else _jsonl_rows(path)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err}); save the manifest as UTF-8") from None


def _jsonl_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs of a JSON Lines manifest."""
    rows = []
    seen: set[str] = set()
    with path.open(encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line_no}: not valid JSON: {err}") from err
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{line_no}: expected a JSON object per line")
            seen.update(row)
            rows.append((line_no, row))
    _warn_unknown(path, seen)
    return rows


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _seconds(value: Any, name: str, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{where}: {name} {value!r} is not a number of seconds")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name} {value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{where}: {name} {value!r} must be a finite time >= 0")
    return seconds


def _labels(value: Any, where: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: labels {text!r} is not a JSON list: {err}") from err
        else:
            value = [part.strip() for part in text.split(";") if part.strip()]
    if isinstance(value, (int, float)):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"{where}: labels must be a list or a ';'-separated string")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float, str)):
            raise ValueError(f"{where}: label {item!r} is neither an index nor a name")
        out.append(item)
    return tuple(out)


def _clip(row: dict[str, Any], clip_seconds: float, where: str) -> ClipSpec:
    start = _seconds(row.get("start"), "start", where)
    end = _seconds(row.get("end"), "end", where)
    if start is not None or end is not None:
        start = 0.0 if start is None else start
        end = start + clip_seconds if end is None else end
        if end <= start:
            raise ValueError(f"{where}: end {end} must be after start {start}")
    return ClipSpec(
        start,
        end,
        _text(row.get("caption")),
        _text(row.get("category")),
        _labels(row.get("labels"), where),
        _text(row.get("id")) or _text(row.get("video_id")),
        _annotations(row.get("annotations"), where),
    )


def _annotations(value: Any, where: str) -> dict[str, Any] | None:
    """Task annotations (a JSON object, or its text in a CSV cell).

    Stored as the clip's ``annotations`` field; converters of the official benchmark files write
    them.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: annotations {value[:60]!r} is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise ValueError(f"{where}: annotations must be a JSON object")
    return value


def read_manifest(path: str | Path, clip_seconds: float = 10.0) -> list[VideoSource]:
    """Read a CSV or JSON Lines manifest; rows of the same file are grouped (first-seen order).

    Raises:
        ValueError: naming the file and line of a malformed row.
    """
    path = Path(path)
    videos: dict[str, VideoSource] = {}
    lines: dict[tuple[str, str], int] = {}  # (file, clip as JSON) -> first line
    for line_no, row in _rows(path):
        where = f"{path}:{line_no}"
        if not isinstance(row.get("path"), (str, type(None))):
            raise ValueError(f"{where}: path must be text, got {row['path']!r}")
        name = _text(row.get("path"))
        if name is None:
            raise ValueError(f"{where}: row has no 'path'")
        file = Path(name).expanduser()
        # One spelling per file ("a/../b.mp4" is "b.mp4"), so its rows share a decode.
        file = Path(os.path.normpath(file if file.is_absolute() else path.parent / file))
        clip = _clip(row, clip_seconds, where)
        key = (str(file), json.dumps(asdict(clip), sort_keys=True))
        if key in lines:
            logger.warning(
                "%s: line %d repeats line %d (%s); writing that clip once",
                path,
                line_no,
                lines[key],
                name,
            )
            continue
        lines[key] = line_no
        source = videos.setdefault(str(file), VideoSource(str(file), file.stem))
        source.clips.append(clip)
    return list(videos.values())


def _as_index(label: Any) -> int | None:
    if isinstance(label, int):
        return label
    if isinstance(label, float) and label.is_integer():
        return int(label)
    if isinstance(label, str) and label.lstrip("-").isdigit():
        return int(label)
    return None


def index_labels(sources: list[VideoSource]) -> tuple[list[VideoSource], list[str] | None]:
    """Make every clip's labels class indices.

    If every label is an integer they are kept; otherwise all labels are names, numbered by
    their sorted order, and that list of names is returned as ``classes``.
    """
    labels = [label for s in sources for c in s.clips for label in c.labels]
    indices = [_as_index(label) for label in labels]
    if all(i is not None for i in indices):
        mapping = {label: i for label, i in zip(labels, indices, strict=True)}
        classes = None
    else:
        classes = sorted({str(label) for label in labels})
        position = {name: i for i, name in enumerate(classes)}
        mapping = {label: position[str(label)] for label in labels}
    out = [
        replace(s, clips=[replace(c, labels=tuple(mapping[x] for x in c.labels)) for c in s.clips])
        for s in sources
    ]
    return out, classes


def read_inputs(
    source: str | Path, manifest: bool | None = None, clip_seconds: float = 10.0
) -> tuple[list[VideoSource], list[str] | None]:
    """Videos to ingest from a folder or a manifest, with labels as indices.

    Args:
        source: a folder (searched recursively), a manifest file or a single video.
        manifest: treat ``source`` as a manifest; None decides by its suffix.
        clip_seconds: clip length for rows with only one of start / end.

    Returns:
        The videos and, when labels were given as names, the class names they index.
    """
    source = Path(source)
    if manifest is None:
        manifest = source.is_file() and is_manifest(source)
    if manifest:
        if not source.is_file():
            raise FileNotFoundError(f"{source}: manifest not found")
        return index_labels(read_manifest(source, clip_seconds))
    if source.is_file():
        return [VideoSource(str(source), source.stem, [ClipSpec()])], None
    return find_videos(source), None
