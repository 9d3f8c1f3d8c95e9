"""VGGSound ``vggsound.csv`` -> an ``avpretrain ingest`` manifest (classification, retrieval).

Reads the file of hche11/VGGSound (``data/vggsound.csv``, README: "# YouTube ID, start seconds,
label, train/test split"): no header, four comma-separated columns, the label quoted when it
holds a comma (``"female speech, woman speaking"``). A clip is the 10 s from ``start``.

Classes: by default every label of the file (all splits, so train and test agree), sorted, as
the common VGGSound loaders number them (e.g. ``VGGSoundClasses`` in the SpecVQGAN code:
``enumerate(sorted(set(labels)))``). A class-list file (one name per line) instead keeps only
the rows of those classes, numbered in the file's order: the VGGSound-Music / -Instruments
subsets. The list used is written beside the manifest (``<out stem>.classes.txt``, one name per
line, line i = class index i); its length is the recipe's ``num_classes``.

Output: one JSON line per clip of the chosen split, ``id`` = ``<ytid>_<start:06d>`` (the VGG-SS /
EZ-VSL clip name), ``start`` / ``end`` (see :mod:`avpretrain.converters.youtube`), ``category`` =
the label text, ``labels`` = ``[class index]``; with a captions file also ``caption``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from avpretrain.arguments import choices
from avpretrain.converters.common import MANIFEST_FLAGS, log_missing, run_function, write_jsonl
from avpretrain.converters.youtube import ClipFiles, csv_rows, seconds
from avpretrain.data.tables import check_complete, read_table

log = logging.getLogger(__name__)

CLIP_SECONDS = 10.0
Split = Literal["train", "test"]
SPLITS = choices(Split)
DEFAULT_PATTERN = "{ytid}_{start:06d}.mp4"


@dataclass(frozen=True)
class VGGSoundClip:
    """One row of ``vggsound.csv``; ``where`` is its ``file:line``."""

    ytid: str
    start: int
    label: str
    split: str
    where: str

    @property
    def clip_id(self) -> str:
        """The clip's id, ``<ytid>_<start:06d>``."""
        return f"{self.ytid}_{self.start:06d}"


def read_vggsound(path: str | Path) -> list[VGGSoundClip]:
    """Every row of ``vggsound.csv``, in file order.

    Raises:
        ValueError: naming the file and line of a row without four columns, with an empty id
            or label, a start that is not whole seconds, or a split other than train / test.
    """
    clips = []
    for where, fields in csv_rows(path):
        if len(fields) != 4:
            raise ValueError(
                f"{where}: {len(fields)} columns, expected 4 (YouTube ID, start seconds, label, "
                f"train/test split): {fields}"
            )
        ytid, start_text, label, split = fields
        if not ytid or not label:
            raise ValueError(f"{where}: empty YouTube id or label")
        start = seconds(start_text, "start", where)
        if not start.is_integer():
            raise ValueError(f"{where}: start {start_text!r} is not whole seconds")
        if split not in SPLITS:
            raise ValueError(f"{where}: split {split!r} is not one of {SPLITS}")
        clips.append(VGGSoundClip(ytid, int(start), label, split, where))
    return clips


def read_class_list(path: str | Path) -> list[str]:
    """Class names, one per line (blank lines ignored), in file order.

    Raises:
        ValueError: no names, a name listed twice, or a file cut inside its last line.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    check_complete(path, len(lines))
    names = [line.strip() for line in lines]
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"{path}: no class names")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{path}: class {name!r} listed twice")
        seen.add(name)
    return names


def read_captions(path: str | Path) -> dict[str, str]:
    """Captions by clip id from a CSV with a header holding ``id`` and ``caption``."""
    rows = read_table(path, ("id", "caption"), "a captions CSV with columns id, caption")
    return {row["id"].strip(): row["caption"].strip() for _, row in rows if row["id"]}


def classes_path(out: str | Path) -> Path:
    """Where the class list of manifest ``out`` goes: ``<out stem>.classes.txt`` beside it."""
    out = Path(out)
    return out.with_name(f"{out.stem}.classes.txt")


def convert(
    vggsound_csv: str | Path,
    video_dir: str | Path,
    out_jsonl: str | Path,
    split: Split | None = None,
    pattern: str = DEFAULT_PATTERN,
    class_list: str | Path | None = None,
    captions: str | Path | None = None,
    untrimmed: bool = False,
    check_videos: bool = True,
) -> dict[str, Any]:
    """Write the ingest manifest of one VGGSound split and its class list.

    Args:
        vggsound_csv: the official ``vggsound.csv``.
        video_dir: folder of the downloaded clips.
        out_jsonl: manifest to write; the class list goes to :func:`classes_path`.
        split: "train", "test", or None for both.
        pattern: file name of a clip (:class:`~avpretrain.converters.youtube.ClipFiles`).
        class_list: keep only these classes, numbered in the file's order (VGGSound-Music /
            -Instruments); None numbers every label of the CSV in sorted order.
        captions: CSV (``id``, ``caption``) of captions for retrieval; clips without one are
            written without.
        untrimmed: files hold whole videos: ask ingest for the clip's own seconds.
        check_videos: leave out (and log) clips whose video is missing.

    Returns:
        Summary: ``clips`` written, ``missing_videos``, ``other_split`` and ``other_classes``
        rows left out, ``classes`` (count), ``out`` and ``classes_out``.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    clips = read_vggsound(vggsound_csv)
    names = read_class_list(class_list) if class_list else sorted({c.label for c in clips})
    index = {name: i for i, name in enumerate(names)}
    if class_list:
        present = {c.label for c in clips}
        absent = [n for n in names if n not in present]
        if absent:
            log.warning(
                "%s: %d classes never occur in %s: %s",
                class_list,
                len(absent),
                vggsound_csv,
                absent[:5],
            )
    text = read_captions(captions) if captions else {}
    files = ClipFiles(video_dir, pattern, untrimmed, check_videos)
    rows, missing, other_split, other_class = [], [], 0, 0
    for clip in clips:
        if split is not None and clip.split != split:
            other_split += 1
            continue
        if clip.label not in index:
            other_class += 1
            continue
        path = files.locate(clip.ytid, clip.start, clip.start + CLIP_SECONDS)
        if path is None:
            missing.append(clip.clip_id)
            continue
        start, end = files.window(clip.start, clip.start + CLIP_SECONDS)
        row: dict[str, Any] = {"path": str(path), "id": clip.clip_id, "start": start, "end": end}
        row.update(category=clip.label, labels=[index[clip.label]])
        if clip.clip_id in text:
            row["caption"] = text[clip.clip_id]
        rows.append(row)
    log_missing(missing, files.video_dir)
    count = write_jsonl(rows, out_jsonl)
    names_out = classes_path(out_jsonl)
    names_out.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return {
        "clips": count,
        "missing_videos": len(missing),
        "other_split": other_split,
        "other_classes": other_class,
        "classes": len(names),
        "out": str(out_jsonl),
        "classes_out": str(names_out),
    }


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain convert-vggsound``.

    Returns 0 on success, 1 if no clip was written, 2 on bad input.
    """
    description = "VGGSound vggsound.csv -> JSON Lines manifest for `avpretrain ingest`."
    aliases = {**MANIFEST_FLAGS, "classes": "class_list"}
    return run_function("convert-vggsound", convert, description, "clips", argv, aliases)
