"""Shared steps of the annotation converters: finding the videos and writing the manifest.

The annotation tables are read by :func:`avpretrain.data.tables.read_table`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tqdm import tqdm

from avpretrain.arguments import parse_call
from avpretrain.data.ingest.manifest import VIDEO_EXTENSIONS

# The older flags of every manifest converter: --videos VIDEO_DIR, --out OUT_JSONL.
MANIFEST_FLAGS = {"videos": "video_dir", "out": "out_jsonl"}

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


def run_function(
    name: str,
    convert: Callable[..., dict[str, Any]],
    description: str,
    count_key: str,
    argv: list[str] | None,
    aliases: Mapping[str, str] | None = None,
) -> int:
    """The ``main`` of a converter subcommand: parse, convert, print the summary as JSON.

    The command line is ``convert``'s signature (:func:`avpretrain.arguments.function_parser`).

    Args:
        name: subcommand name, for the usage line and error messages (``convert-llp``).
        convert: the conversion function; its keyword arguments are the parsed options.
        description: what the command does.
        count_key: the summary entry counting what was written.
        argv: command-line arguments (None: ``sys.argv``).
        aliases: older flag name (no ``--``) -> parameter name.

    Returns:
        0 on success, 1 if nothing was written, 2 on bad input (the message names the file).
    """
    kwargs = parse_call(convert, f"avpretrain {name}", description, argv, aliases)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = convert(**kwargs)
    except (ValueError, FileNotFoundError) as err:
        print(f"avpretrain {name}: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0 if summary[count_key] else 1
