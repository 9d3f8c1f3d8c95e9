"""VGG-SS / Flickr-SoundNet test *pairs* (released image + audio) -> localization shards.

The localization benchmarks are evaluated on released image / sound pairs, not on videos:
stoneMo/EZ-VSL ``datasets.py:get_test_dataset`` reads ``<test_data_path>/frames/<id>.jpg`` and
``<test_data_path>/audio/<id>.wav`` for the ids of a test list that have both, and resizes the
image to 224 x 224 without keeping its aspect ratio (``Resize((224, 224), BICUBIC)``). This
converter writes those pairs as shards (``write_shard`` + ``write_index``), so the annotated
image itself is the stored frame and, stored at 224 x 224, the loader's evaluation transform
is the identity: the ground-truth map equals EZ-VSL's / SLAVC's (the boxes are normalised, so
the resize does not move them). Use :mod:`avpretrain.converters.vggss` instead to cut clips
from your own videos with ``avpretrain ingest``.

Per pair: ``f00.jpg`` (the image, resized), ``flac`` (the whole audio, mono; or the centred
``centre_seconds``, EZ-VSL's ``load_spectrogram`` takes the middle 3 s), ``json``
(``make_meta``: ``video_id`` = the id, ``start`` 0, ``end`` = the audio's length,
``frame_times`` = [its middle], ``category`` (VGG-SS class), ``annotations`` = ``{"boxes":
[...]}`` normalised, as :mod:`avpretrain.converters.vggss` reads them from ``vggss.json`` or
Flickr's ``Annotations/*.xml``). Pairs whose image or audio is missing are logged and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from avpretrain.converters.common import run_function
from avpretrain.converters.shard_writer import read_audio, safe_key, write_shards
from avpretrain.converters.vggss import read_flickr_xml, read_ids, read_vggss
from avpretrain.data.schema import encode_sample, make_meta
from avpretrain.data.shards import write_index

log = logging.getLogger(__name__)

FRAME_SIZE = 224


def read_annotations(annotations: str | Path) -> list[dict[str, Any]]:
    """``{"file", "class", "boxes"}`` per annotated pair: ``vggss.json`` or Flickr's folder."""
    annotations = Path(annotations)
    if annotations.is_dir():
        return [
            {"file": xml.stem, "class": None, "boxes": read_flickr_xml(xml)}
            for xml in sorted(annotations.glob("*.xml"))
        ]
    if annotations.is_file():
        return read_vggss(annotations)
    raise FileNotFoundError(f"{annotations}: neither vggss.json nor a folder of Flickr XMLs")


def centre_crop(audio: np.ndarray, seconds: float | None, sample_rate: int) -> np.ndarray:
    """The middle ``seconds`` of [samples] (all of it when shorter or ``seconds`` is None).

    Starts at ``max(duration / 2 - seconds / 2, 0)``, as EZ-VSL's ``load_spectrogram``.
    """
    if seconds is None:
        return audio
    start = max(int((len(audio) / sample_rate / 2 - seconds / 2) * sample_rate), 0)
    return audio[start : start + int(round(seconds * sample_rate))]


def pair_sample(
    entry: dict[str, Any],
    data_dir: Path,
    size: int,
    sample_rate: int,
    centre_seconds: float | None,
) -> dict[str, Any]:
    """The shard sample of one annotated pair.

    Raises:
        FileNotFoundError: its image or audio is missing.
    """
    name = entry["file"]
    frame_path, audio_path = data_dir / "frames" / f"{name}.jpg", data_dir / "audio" / f"{name}.wav"
    absent = [str(p) for p in (frame_path, audio_path) if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"{name}: missing {absent}")
    try:
        with Image.open(frame_path) as img:
            frame = np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))
    except OSError as err:
        raise ValueError(f"{frame_path}: not a readable image: {err}") from err
    audio = centre_crop(read_audio(audio_path, sample_rate), centre_seconds, sample_rate)
    seconds = len(audio) / sample_rate
    meta = make_meta(
        video_id=name,
        start=0.0,
        end=seconds,
        sample_rate=sample_rate,
        frame_times=[seconds / 2],
        category=entry["class"],
        annotations={"boxes": entry["boxes"]},
    )
    return encode_sample(safe_key(name), [frame], audio, meta)


def convert(
    annotations: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    ids: str | Path | None = None,
    size: int = FRAME_SIZE,
    sample_rate: int = 16000,
    centre_seconds: float | None = None,
    shard_size: int = 256,
) -> dict[str, Any]:
    """Write the localization test pairs as shards and ``index.json``.

    Args:
        annotations: ``vggss.json`` or Flickr-SoundNet's ``Annotations/`` folder.
        data_dir: folder holding ``frames/<id>.jpg`` and ``audio/<id>.wav``.
        out_dir: new (or empty) shard folder.
        ids: CSV whose first column lists the pairs to keep (``vggss_test.csv``,
            ``flickr_test.csv``), or None for every annotated pair.
        size: side the images are resized to (224: the benchmarks' maps).
        sample_rate: rate of the stored FLAC audio.
        centre_seconds: keep only the middle of each audio (EZ-VSL: 3); None keeps it all.
        shard_size: pairs per shard.

    Returns:
        Summary (also in ``index.json``): ``pairs`` written, ``missing_pairs``, ``boxes``,
        ``shards``.
    """
    if size < 1 or (centre_seconds is not None and not centre_seconds > 0):
        raise ValueError(f"size {size} and centre_seconds {centre_seconds} must be > 0")
    entries = read_annotations(annotations)
    if ids is not None:
        keep = read_ids(ids)
        entries = [e for e in entries if e["file"] in keep]
    data = Path(data_dir)
    if not data.is_dir():
        raise FileNotFoundError(f"{data}: folder of frames/ and audio/ not found")
    missing: list[str] = []
    boxes = 0

    def samples() -> Iterator[dict[str, Any]]:
        nonlocal boxes
        for entry in entries:
            try:
                yield pair_sample(entry, data, size, sample_rate, centre_seconds)
            except FileNotFoundError as err:
                log.warning("skipped %s", err)
                missing.append(entry["file"])
                continue
            boxes += len(entry["boxes"])

    counts = write_shards(samples(), out_dir, shard_size)
    summary = {
        "pairs": sum(counts.values()),
        "missing_pairs": len(missing),
        "boxes": boxes,
        "shards": len(counts),
    }
    write_index(out_dir, counts, summary=summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain convert-vggss-pairs``.

    Returns 0 on success, 1 if no pair was written, 2 on bad input.
    """
    description = (
        "VGG-SS / Flickr-SoundNet test image + audio pairs -> localization shards "
        "(images resized to 224 x 224 as EZ-VSL, boxes in the JSON's annotations)."
    )
    aliases = {"data": "data_dir", "out": "out_dir"}
    return run_function("convert-vggss-pairs", convert, description, "pairs", argv, aliases)
