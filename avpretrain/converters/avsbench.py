"""AVSBench S4 / MS3 -> segmentation shards with one PNG mask per frame (written directly).

``avpretrain ingest`` cannot carry mask images, and the masks belong to AVSBench's own extracted
frames, so this converter writes the shards itself (``write_shard`` + ``write_index``) in the
layout :func:`avpretrain.tasks.targets.segmentation.png_mask_targets` reads: one clip per
annotated frame, ``f00.jpg`` (the frame), ``m00.png`` (its mask, bytes as released), ``flac``
(the video's whole 5 s audio, mono) and ``json`` (``make_meta``: ``video_id``, ``start`` 0,
``end`` = the audio's length, ``frame_times`` = [the frame's time], ``category`` (S4),
``annotations`` = ``{"subset", "frame"}`` with the 1-based AVSBench frame number).

Reads the release of OpenNLPLab/AVSBench as its loaders do (``avs_scripts/avs_s4/dataloader.py``,
``avs_ms3/dataloader.py``, ``config.py``; ``preprocess_scripts/preprocess_s4.py`` made the
frames and wavs):

- S4 (``Single-source/``): ``s4_meta_data.csv`` with a header; the video name is the *first*
  column (read by position, as ``df_one_video[0]``), then ``category`` and ``split`` by name.
  ``s4_data/visual_frames/<split>/<category>/<name>/<name>_<i>.png`` (i = 1..5),
  ``s4_data/audio_wav/<split>/<category>/<name>.wav``,
  ``s4_data/gt_masks/<split>/<category>/<name>/<name>_<i>.png``: train videos have mask 1 only,
  val / test all five.
- MS3 (``Multi-sources/``): ``ms3_meta_data.csv``, first column the video id, ``split``;
  ``ms3_data/visual_frames/<name>/<name>.mp4_<i>.png`` (no split folder),
  ``ms3_data/audio_wav/<split>/<name>.wav``, ``ms3_data/gt_masks/<split>/<name>/<name>_<i>.png``
  (i = 1..5 in every split; palette PNGs).

Frame ``i`` is the frame at ``(i - 1) + 15/16`` s (the preprocessing keeps sample 15 of 16 per
second). Frames and masks are 224 x 224 as released; ``size`` resizes both (bilinear / nearest)
for other releases. A video whose files are missing is logged and counted, not fatal.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from avpretrain.arguments import choices
from avpretrain.converters.common import run_function
from avpretrain.converters.shard_writer import read_audio, safe_key, write_shards
from avpretrain.data.schema import encode_sample, make_meta
from avpretrain.data.shards import write_index
from avpretrain.data.tables import read_table

log = logging.getLogger(__name__)

Subset = Literal["s4", "ms3"]
Split = Literal["train", "val", "test"]
SUBSETS = choices(Subset)
SPLITS = choices(Split)
FRAMES = 5
FRAME_OFFSET_S = 15 / 16  # preprocess_s4.py: the frame with k % 16 == 15 of each second
MASK_MEMBER = "m00.png"


@dataclass(frozen=True)
class AVSVideo:
    """One video of the metadata CSV (``category`` None for MS3); ``where`` is ``file:line``."""

    name: str
    split: str
    category: str | None
    where: str


def read_meta(path: str | Path, subset: str) -> list[AVSVideo]:
    """The videos of ``s4_meta_data.csv`` / ``ms3_meta_data.csv``, in file order.

    Raises:
        ValueError: a missing column, an empty name or an unknown split, naming file and line.
    """
    path = Path(path)
    if subset not in SUBSETS:
        raise ValueError(f"subset {subset!r} is not one of {SUBSETS}")
    needed = ("category", "split") if subset == "s4" else ("split",)
    expected = f"AVSBench's {subset}_meta_data.csv (video name first, then {', '.join(needed)})"
    videos = []
    for where, row in read_table(path, needed, expected):
        first = next(iter(row))
        if first in needed:
            raise ValueError(f"{path}: the first column must be the video name; {expected}")
        name = (row[first] or "").strip()
        split = (row["split"] or "").strip()
        category = (row["category"] or "").strip() if subset == "s4" else None
        if not name or (subset == "s4" and not category):
            raise ValueError(f"{where}: empty video name or category")
        if split not in SPLITS:
            raise ValueError(f"{where}: split {split!r} is not one of {SPLITS}")
        videos.append(AVSVideo(name, split, category, where))
    return videos


def video_files(root: Path, subset: str, video: AVSVideo) -> tuple[Path, list[tuple[Path, Path]]]:
    """The video's wav and its (frame, mask) pairs of the annotated frames, in frame order."""
    name, split = video.name, video.split
    if subset == "s4":
        folder = Path(split, video.category or "")
        frames = root / "visual_frames" / folder / name
        frame_names = [f"{name}_{i}.png" for i in range(1, FRAMES + 1)]
    else:
        folder = Path(split)
        frames = root / "visual_frames" / name
        frame_names = [f"{name}.mp4_{i}.png" for i in range(1, FRAMES + 1)]
    masks = root / "gt_masks" / folder / name
    annotated = 1 if subset == "s4" and split == "train" else FRAMES
    pairs = [(frames / frame_names[i], masks / f"{name}_{i + 1}.png") for i in range(annotated)]
    return root / "audio_wav" / folder / f"{name}.wav", pairs


def _frame_and_mask(frame: Path, mask: Path, size: int | None) -> tuple[np.ndarray, bytes]:
    """[H, W, 3] uint8 frame and the mask's PNG bytes (re-encoded only when resized)."""
    try:
        with Image.open(frame) as img:
            rgb = img.convert("RGB")
    except OSError as err:
        raise ValueError(f"{frame}: not a readable frame image: {err}") from err
    data = mask.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as m:
            m.load()
            mask_size = m.size
            if size is not None:  # nearest keeps the labels (and a palette PNG's palette)
                buf = io.BytesIO()
                m.resize((size, size), Image.Resampling.NEAREST).save(buf, format="PNG")
                data = buf.getvalue()
    except OSError as err:
        raise ValueError(f"{mask}: not a readable PNG mask: {err}") from err
    if size is not None:
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    elif mask_size != rgb.size:
        raise ValueError(
            f"{mask}: mask of {mask_size} pixels but its frame {frame} is {rgb.size}; "
            "pass size to resize both"
        )
    return np.asarray(rgb), data


def sample_key(name: str, frame: int) -> str:
    """The webdataset key of a video's annotated frame (1-based)."""
    return f"{safe_key(name)}_{frame}"


def video_samples(
    root: Path, subset: str, video: AVSVideo, sample_rate: int, size: int | None
) -> list[dict[str, Any]]:
    """The shard samples of one video (one per annotated frame).

    Raises:
        FileNotFoundError: one of its files is missing.
    """
    wav, pairs = video_files(root, subset, video)
    needed = [wav, *(p for pair in pairs for p in pair)]
    absent = [str(p) for p in needed if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"{video.where}: {video.name}: missing {absent[:3]}")
    audio = read_audio(wav, sample_rate)
    samples = []
    for i, (frame_path, mask_path) in enumerate(pairs):
        frame, mask = _frame_and_mask(frame_path, mask_path, size)
        meta = make_meta(
            video_id=video.name,
            start=0.0,
            end=len(audio) / sample_rate,
            sample_rate=sample_rate,
            frame_times=[i + FRAME_OFFSET_S],
            category=video.category,
            annotations={"subset": subset, "frame": i + 1},
        )
        sample = encode_sample(sample_key(video.name, i + 1), [frame], audio, meta)
        sample[MASK_MEMBER] = mask
        samples.append(sample)
    return samples


def convert(
    meta_csv: str | Path,
    data_root: str | Path,
    out_dir: str | Path,
    subset: Subset,
    split: Split,
    sample_rate: int = 16000,
    size: int | None = None,
    shard_size: int = 256,
) -> dict[str, Any]:
    """Write the shards of one AVSBench split and their ``index.json``.

    Args:
        meta_csv: ``s4_meta_data.csv`` or ``ms3_meta_data.csv``.
        data_root: ``s4_data`` or ``ms3_data`` (holding ``visual_frames``, ``audio_wav``,
            ``gt_masks``).
        out_dir: new (or empty) shard folder.
        subset: "s4" or "ms3".
        split: "train", "val" or "test".
        sample_rate: rate of the stored FLAC audio.
        size: resize frames and masks to ``size`` x ``size``; None keeps them (they must agree).
        shard_size: clips per shard.

    Returns:
        Summary (also stored in ``index.json``): ``videos``, ``clips`` written,
        ``missing_videos`` and ``shards``.
    """
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    videos = [v for v in read_meta(meta_csv, subset) if v.split == split]
    root, out = Path(data_root), Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: AVSBench data folder not found")
    skipped: list[str] = []

    def samples() -> Iterator[dict[str, Any]]:
        for video in videos:
            try:
                yield from video_samples(root, subset, video, sample_rate, size)
            except FileNotFoundError as err:
                log.warning("skipped %s", err)
                skipped.append(video.name)

    counts = write_shards(samples(), out, shard_size)
    missing = len(skipped)
    summary = {
        "videos": len(videos) - missing,
        "clips": sum(counts.values()),
        "missing_videos": missing,
        "shards": len(counts),
    }
    write_index(out, counts, summary=summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain convert-avsbench``.

    Returns 0 on success, 1 if no clip was written, 2 on bad input.
    """
    description = (
        "AVSBench S4 / MS3 frames, masks and wavs -> segmentation shards (one clip per "
        "annotated frame, mask member m00.png)."
    )
    aliases = {"data": "data_root", "out": "out_dir"}
    return run_function("convert-avsbench", convert, description, "clips", argv, aliases)
