"""Shared steps of the converters of YouTube-clip benchmarks (VGGSound, AudioSet, VGG-SS).

Their annotation files name a clip by YouTube id and start second; where the user keeps the
downloaded video is a choice of the downloader, so a file *pattern* (Python format string) says
it, e.g. ``{ytid}_{start:06d}.mp4`` (VGG-SS / EZ-VSL naming, ``zpWuikVorYg_000032``) or
``{ytid}.mp4``. Fields: ``ytid``, ``start`` and ``end`` (whole seconds), ``start_ms`` and
``end_ms`` (milliseconds). A downloaded file holds either the clip alone (trimmed, the default:
the manifest asks for seconds 0 to the clip's length) or the whole video (``untrimmed``: the
manifest asks for the clip's own seconds).
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from avpretrain.converters.common import VideoFinder
from avpretrain.data.tables import check_complete

log = logging.getLogger(__name__)

FIELDS = ("ytid", "start", "end", "start_ms", "end_ms")


def seconds(value: str, what: str, where: str) -> float:
    """A finite, non-negative time in seconds, or a ValueError naming ``where``."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {what} {value!r} is not a number of seconds") from None
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{where}: {what} {value!r} must be a finite time >= 0")
    return out


def csv_rows(path: str | Path, comments: bool = False) -> Iterator[tuple[str, list[str]]]:
    """(``file:line``, fields) of a header-less CSV, fields stripped; blank lines skipped.

    Callers check each row's field count; a file that ends inside its last row is refused
    after that row (:func:`~avpretrain.data.tables.check_complete`).

    Args:
        path: the CSV.
        comments: skip lines starting with ``#`` (AudioSet's three header lines).

    Raises:
        ValueError: a malformed row (an unclosed quote, ...) or a file cut inside its last row,
            naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    with path.open(newline="", encoding="utf-8") as f:
        # skipinitialspace: AudioSet separates with ", " and quotes the label list after it
        reader = csv.reader(f, skipinitialspace=True, strict=True)
        try:
            for fields in reader:
                if not fields or not "".join(fields).strip():
                    continue
                if comments and fields[0].lstrip().startswith("#"):
                    continue
                yield f"{path}:{reader.line_num}", [x.strip() for x in fields]
        except csv.Error as err:
            raise ValueError(f"{path}:{reader.line_num}: malformed CSV row: {err}") from err
    check_complete(path, reader.line_num)


@dataclass
class ClipFiles:
    """Where the video of a YouTube clip is.

    Args:
        video_dir: folder of the downloaded videos.
        pattern: file name of a clip under ``video_dir`` (format fields in the module docstring).
        untrimmed: files hold whole videos: the manifest asks for the clip's own seconds.
        check: look for the files (rows whose video is missing are left out and logged); when
            the pattern's file is absent, any video under ``video_dir`` with the same stem (other
            extension or subfolder) is taken. False writes the pattern's path unchecked.
    """

    video_dir: str | Path
    pattern: str
    untrimmed: bool = False
    check: bool = True

    def __post_init__(self) -> None:
        self.video_dir = Path(os.path.abspath(self.video_dir))
        try:
            self.pattern.format(ytid="x", start=0, end=10, start_ms=0, end_ms=10000)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"file pattern {self.pattern!r} is not a format string over {FIELDS}: {err!r}"
            ) from None
        if self.check and not self.video_dir.is_dir():
            raise FileNotFoundError(f"{self.video_dir}: video folder not found")
        self._finder: VideoFinder | None = None

    def name(self, ytid: str, start: float, end: float) -> str:
        """The pattern's file name for a clip."""
        return self.pattern.format(
            ytid=ytid,
            start=int(start),
            end=int(end),
            start_ms=round(start * 1000),
            end_ms=round(end * 1000),
        )

    def locate(self, ytid: str, start: float, end: float) -> Path | None:
        """The clip's video file, or None if it is not there."""
        path = cast(Path, self.video_dir) / self.name(ytid, start, end)  # a Path after init
        if not self.check or path.is_file():
            return path
        if self._finder is None:
            self._finder = VideoFinder(self.video_dir)
        return self._finder.find(Path(path.name).stem)

    def window(self, start: float, end: float) -> tuple[float, float]:
        """Seconds the manifest asks of the file for a clip at ``start``-``end`` of its video."""
        return (float(start), float(end)) if self.untrimmed else (0.0, float(end - start))
