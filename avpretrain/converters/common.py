"""Shared steps of the annotation converters: finding the videos and writing the manifest."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from avpretrain.data.ingest.manifest import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)


class VideoFinder:
    """Videos under a folder (recursive, by extension), looked up by file stem.

    Args:
        video_dir: folder holding the benchmark's videos (subfolders allowed).
        check: when False the folder is not read and :meth:`find` guesses
            ``video_dir/<first stem>.mp4``, so a manifest can be written before the download.
    """

    def __init__(self, video_dir: str | Path, check: bool = True) -> None:
        self.video_dir = Path(os.path.abspath(video_dir))
        self.check = check
        self.by_stem: dict[str, Path] = {}
        if not check:
            return
        if not self.video_dir.is_dir():
            raise FileNotFoundError(f"{self.video_dir}: video folder not found")
        found = tqdm(self.video_dir.rglob("*"), desc="finding videos", unit=" files", disable=None)
        for path in sorted(found):
            if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
                if path.stem in self.by_stem:
                    log.warning(
                        "%s: duplicate video name, keeping %s", path, self.by_stem[path.stem]
                    )
                    continue
                self.by_stem[path.stem] = path

    def find(self, *stems: str) -> Path | None:
        """The first video named by one of ``stems``, or None if there is none."""
        if not self.check:
            return self.video_dir / f"{stems[0]}.mp4"
        for stem in stems:
            if stem in self.by_stem:
                return self.by_stem[stem]
        return None


def check_complete(path: str | Path, lines: int) -> None:
    """Refuse a text file whose last line has no line break: it may have been cut short.

    A download or copy cut inside the last row leaves a row that often still parses (``3.38``
    cut to ``3.3``, a label list cut after its first label) and would become a wrong label.
    Every tool that writes tables (csv, pandas, spreadsheets) ends the last row with a line
    break, so its absence is the one sign of such a cut.

    Args:
        path: the file.
        lines: its line count, for the ``file:line`` of the message.

    Raises:
        ValueError: naming the file and its last line.
    """
    with Path(path).open("rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
    if last not in (b"\n", b"\r"):
        raise ValueError(
            f"{path}:{lines}: the file ends inside its last row (no line break after it): it "
            f"may have been cut short (an interrupted download or copy). Get the file again; "
            f"if that row is complete, end the file with a line break"
        )


def read_table(
    path: str | Path, columns: Iterable[str], expected: str, delimiter: str = ","
) -> list[tuple[str, dict[str, str]]]:
    r"""``(file:line, row)`` pairs of a CSV with a header row, in file order.

    Every row must have as many fields as the header (blank lines are skipped) and the file must
    end with a line break (:func:`check_complete`), so a truncated or malformed row is an error
    rather than a row with missing or shortened values.

    Args:
        path: the file.
        columns: columns the header must hold (others may follow).
        expected: what the file should be, for the error message.
        delimiter: ``","``, or ``"\t"`` for tab-separated files.

    Raises:
        ValueError: a missing column (naming the file, its header and ``expected``), a row with
            too few or too many fields, or a malformed or cut row, naming the file and line.
    """
    path = Path(path)
    rows = []
    with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheet exports' BOM
        reader = csv.DictReader(f, delimiter=delimiter, strict=True)
        try:
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise ValueError(
                    f"{path}: missing column(s) {missing} (header {header}); expected {expected}"
                )
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row or None in row.values():  # csv's marks of extra / missing
                    fields = sum(row.get(k) is not None for k in set(header))
                    fields += len(row.get(None) or [])
                    raise ValueError(
                        f"{where}: {fields} fields, the header has {len(header)} "
                        f"({', '.join(header)}): a cut or malformed row"
                    )
                rows.append((where, row))
        except csv.Error as err:
            line = reader.reader.line_num  # DictReader's own count lags behind on errors
            raise ValueError(f"{path}:{line}: malformed CSV row: {err}") from err
    check_complete(path, reader.line_num)
    return rows


def log_missing(missing: list[str], video_dir: str | Path) -> None:
    """One warning naming the first missing videos and how many there are."""
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        log.warning("%d videos not found under %s, left out: %s", len(missing), video_dir, shown)


def write_jsonl(rows: Iterable[dict[str, Any]], out: str | Path) -> int:
    """Write one JSON object per line (to ``<out>.tmp``, then renamed); returns the row count."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(out)
    return count


def run_converter(
    name: str,
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    convert: Callable[[argparse.Namespace], dict[str, Any]],
    count_key: str,
) -> int:
    """The ``main`` of a converter subcommand: parse, convert, print the summary as JSON.

    Args:
        name: subcommand name, for error messages (``convert-llp``).
        parser: the converter's argument parser.
        argv: command-line arguments (None: ``sys.argv``).
        convert: runs the conversion from the parsed arguments and returns its summary.
        count_key: the summary entry counting what was written.

    Returns:
        0 on success, 1 if nothing was written, 2 on bad input (the message names the file).
    """
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = convert(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"avpretrain {name}: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0 if summary[count_key] else 1
