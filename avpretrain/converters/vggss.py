"""VGG-SS and Flickr-SoundNet box annotations -> an ``avpretrain ingest`` manifest (localization).

Two official formats, read as stoneMo/EZ-VSL ``datasets.py:load_all_bboxes`` reads them (SLAVC's
copy is the same):

- **VGG-SS** ``vggss.json`` (hche11/Localizing-Visual-Sounds-the-Hard-Way ``metadata/vggss.json``):
  a JSON list of ``{"file": "zpWuikVorYg_000032", "class": "elk bugling", "bbox": [[x0, y0, x1,
  y1], ...]}``, boxes normalised to [0, 1] (a few reach past it; EZ-VSL clips them when drawing,
  as the targets do). ``file`` is ``<YouTube id>_<start:06d>`` of a 10 s VGGSound clip; its video
  is found with a file pattern as in :mod:`avpretrain.converters.vggsound`.
- **Flickr-SoundNet** ``Annotations/<id>.xml`` (ardasnck/learning_to_localize_sound_source), one
  file per image, every annotator's box in 256 x 256 pixels: for each child of the root, each
  child element tagged ``bbox`` is one box; its first sub-element is skipped and the next four
  are ``xmin, ymin, xmax, ymax`` (integers). Sub-elements named ``xmin`` ... ``ymax`` are read by
  name. Boxes are divided by 256 (EZ-VSL scales them by 224 / 256 for its 224 x 224 map). The
  video is the one under the video folder whose stem is the XML's stem.

An optional id list (first CSV column: EZ-VSL's ``metadata/vggss_test.csv`` or
``flickr_test.csv``, the 250 Flickr test images among the 5k annotated) keeps only those clips.

Output: one JSON line per clip, ``id`` = the file id, ``start`` / ``end``, ``category`` (VGG-SS
class) and ``annotations`` = ``{"boxes": [[x0, y0, x1, y1], ...]}`` normalised to the frame,
what :func:`avpretrain.tasks.targets.localization.vggss_box_targets` /
:func:`~avpretrain.tasks.targets.localization.flickr_box_targets` read. Ingest the test clips
with ``--frames 1``: the loader scores the stored frame, taken at the clip's centre.
"""

from __future__ import annotations

import json
import logging
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from avpretrain.converters.common import (
    MANIFEST_FLAGS,
    VideoFinder,
    log_missing,
    run_function,
    write_jsonl,
)
from avpretrain.converters.youtube import ClipFiles, csv_rows

log = logging.getLogger(__name__)

CLIP_SECONDS = 10.0
FLICKR_PIXELS = 256
DEFAULT_PATTERN = "{ytid}_{start:06d}.mp4"
BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")


def _box(values: Any, where: str) -> list[float]:
    if (
        not isinstance(values, (list, tuple))
        or len(values) != 4
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values)
        or not all(math.isfinite(v) for v in values)
    ):
        raise ValueError(f"{where}: bbox {values!r} is not [xmin, ymin, xmax, ymax] (4 numbers)")
    return [float(v) for v in values]


def read_vggss(path: str | Path) -> list[dict[str, Any]]:
    """``{"file", "class", "boxes"}`` of every ``vggss.json`` entry, in file order.

    Raises:
        ValueError: not a JSON list, an entry without ``file`` / ``bbox``, a malformed box or a
            file named twice, naming the file and the entry.
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON: {err}") from err
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of {{file, class, bbox}} entries")
    out, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict) or not entry.get("file") or "bbox" not in entry:
            raise ValueError(f"{where}: needs 'file' and 'bbox' ({entry!r:.80})")
        name = str(entry["file"])
        where += f" ({name})"
        if name in seen:
            raise ValueError(f"{where}: listed twice")
        seen.add(name)
        if not isinstance(entry["bbox"], list):
            raise ValueError(f"{where}: bbox must be a list of boxes")
        boxes = [_box(b, where) for b in entry["bbox"]]
        out.append({"file": name, "class": entry.get("class"), "boxes": boxes})
    return out


def parse_clip_name(name: str) -> tuple[str, int]:
    """``(YouTube id, start)`` of a VGG-SS file id such as ``"zpWuikVorYg_000032"``."""
    ytid, _, start = name.rpartition("_")
    if not ytid or not start.isdigit():
        raise ValueError(f"VGG-SS file {name!r} is not <YouTube id>_<start seconds>")
    return ytid, int(start)


def read_flickr_xml(path: str | Path) -> list[list[float]]:
    """Every annotator's box of one Flickr-SoundNet XML, normalised (pixels / 256).

    Raises:
        ValueError: unreadable XML or a ``bbox`` without four integer coordinates.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{path}: not valid XML: {err}") from err
    boxes: list[list[float]] = []
    for child in root:
        for element in child:
            if element.tag != "bbox":
                continue
            where = f"{path}: <bbox> number {len(boxes) + 1}"
            named = {e.tag: e.text for e in element}
            texts = [named[t] for t in BOX_TAGS] if set(BOX_TAGS) <= set(named) else None
            if texts is None:
                texts = [e.text for e in list(element)[1:]]  # EZ-VSL skips the first
            try:
                values = [int((t or "").strip()) for t in texts]
            except ValueError:
                raise ValueError(f"{where}: coordinates {texts} are not integers") from None
            boxes.append([v / FLICKR_PIXELS for v in _box(values, where)])
    return boxes


def read_ids(path: str | Path) -> set[str]:
    """The ids in the first column of a CSV (EZ-VSL's test lists)."""
    return {fields[0] for _, fields in csv_rows(path)}


def _vggss_rows(
    annotations: Path, files: ClipFiles, ids: set[str] | None, missing: list[str]
) -> list[dict[str, Any]]:
    rows = []
    for entry in read_vggss(annotations):
        if ids is not None and entry["file"] not in ids:
            continue
        try:
            ytid, start = parse_clip_name(entry["file"])
        except ValueError as err:
            raise ValueError(f"{annotations}: {err}") from None
        path = files.locate(ytid, start, start + CLIP_SECONDS)
        if path is None:
            missing.append(entry["file"])
            continue
        clip_start, clip_end = files.window(start, start + CLIP_SECONDS)
        row = {"path": str(path), "id": entry["file"], "start": clip_start, "end": clip_end}
        if entry["class"]:
            row["category"] = str(entry["class"])
        rows.append({**row, "annotations": {"boxes": entry["boxes"]}})
    return rows


def _flickr_rows(
    annotations: Path, finder: VideoFinder, seconds: float, ids: set[str] | None, missing: list
) -> list[dict[str, Any]]:
    rows = []
    for xml in sorted(annotations.glob("*.xml")):
        if ids is not None and xml.stem not in ids:
            continue
        boxes = read_flickr_xml(xml)
        path = finder.find(xml.stem)
        if path is None:
            missing.append(xml.stem)
            continue
        row = {"path": str(path), "id": xml.stem, "start": 0.0, "end": float(seconds)}
        rows.append({**row, "annotations": {"boxes": boxes}})
    return rows


def convert(
    annotations: str | Path,
    video_dir: str | Path,
    out_jsonl: str | Path,
    ids: str | Path | None = None,
    pattern: str = DEFAULT_PATTERN,
    untrimmed: bool = False,
    seconds: float = CLIP_SECONDS,
    check_videos: bool = True,
) -> dict[str, Any]:
    """Write the localization manifest of VGG-SS (a ``.json``) or Flickr (a folder of XMLs).

    Args:
        annotations: ``vggss.json``, or Flickr-SoundNet's ``Annotations/`` folder.
        video_dir: folder of the videos.
        out_jsonl: manifest to write.
        ids: CSV whose first column lists the clips to keep (a test list), or None for all.
        pattern: VGG-SS: file name of a clip (:class:`~avpretrain.converters.youtube.ClipFiles`).
        untrimmed: VGG-SS: files are whole videos: ask for the clip's own 10 s.
        seconds: Flickr: the clip asked of each video, from its start (the annotation files
            carry no time; the stored centre frame must be the annotated image).
        check_videos: leave out (and log) clips whose video is missing.

    Returns:
        Summary: ``format``, ``clips`` written, ``missing_videos``, ``boxes`` and ``out``.
    """
    annotations = Path(annotations)
    if not seconds > 0:
        raise ValueError(f"clip length {seconds} must be > 0 seconds")
    keep = read_ids(ids) if ids is not None else None
    missing: list[str] = []
    if annotations.is_dir():
        fmt = "flickr"
        finder = VideoFinder(video_dir, check_videos)
        rows = _flickr_rows(annotations, finder, seconds, keep, missing)
        video_root = finder.video_dir
    elif annotations.is_file():
        fmt = "vggss"
        files = ClipFiles(video_dir, pattern, untrimmed, check_videos)
        rows = _vggss_rows(annotations, files, keep, missing)
        video_root = Path(files.video_dir)
    else:
        raise FileNotFoundError(f"{annotations}: neither vggss.json nor a folder of Flickr XMLs")
    log_missing(missing, video_root)
    count = write_jsonl(rows, out_jsonl)
    return {
        "format": fmt,
        "clips": count,
        "missing_videos": len(missing),
        "boxes": sum(len(r["annotations"]["boxes"]) for r in rows),
        "out": str(out_jsonl),
    }


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain convert-vggss``; 0 on success, 1 if no clip was written, 2 on bad input."""
    description = (
        "VGG-SS vggss.json or Flickr-SoundNet Annotations/*.xml -> JSON Lines manifest "
        "(boxes in `annotations`) for `avpretrain ingest --frames 1`."
    )
    return run_function("convert-vggss", convert, description, "clips", argv, MANIFEST_FLAGS)
