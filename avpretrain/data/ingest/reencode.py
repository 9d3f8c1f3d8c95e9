"""``avpretrain reencode``: rewrite shards with another audio codec, every other member as it is.

    avpretrain reencode data/acav/train --out data/acav/train-pcm --codec pcm

FLAC and PCM hold the same 16-bit samples (:mod:`avpretrain.data.audio_codec`), so the
conversion is lossless both ways; frames, JSON and any other member are copied byte for byte.
Shards are written atomically under their own names and existing ones are skipped, so an
interrupted run resumes. The new ``index.json`` keeps the source index's fields and records
``audio_codec``; the command prints the size ratio of the new shards to the old.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from avpretrain.arguments import check_choice, parse_call
from avpretrain.data.audio_codec import AUDIO_EXTS, AudioCodec, decode_audio_int16, encode_audio
from avpretrain.data.schema import JSON_EXT
from avpretrain.data.shards import INDEX_NAME, read_raw_samples, write_index, write_shard

logger = logging.getLogger("avpretrain.reencode")


def reencode_sample(sample: dict[str, Any], codec: AudioCodec) -> dict[str, Any]:
    """One raw sample with its audio member in ``codec``, every other member as it is.

    Raises:
        ValueError: when the audio or JSON is malformed, or the JSON's ``sample_rate`` disagrees
            with the FLAC header's (a PCM member's rate is the JSON's).
    """
    meta = json.loads(sample[JSON_EXT]) if JSON_EXT in sample else {}
    samples, rate = decode_audio_int16(sample, meta)
    if meta.get("sample_rate") != rate:
        raise ValueError(f"JSON sample_rate {meta.get('sample_rate')} but the audio is {rate} Hz")
    ext, data = encode_audio(samples, rate, codec)
    return {
        ext if k in AUDIO_EXTS else k: data if k in AUDIO_EXTS else v for k, v in sample.items()
    }


def _samples(path: Path, codec: AudioCodec) -> Iterator[dict[str, Any]]:
    for sample in read_raw_samples(path):
        try:
            yield reencode_sample(sample, codec)
        except (ValueError, KeyError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: sample {sample['__key__']!r}: {err}") from err


def reencode_shard(path: Path, out: Path, codec: AudioCodec) -> tuple[str, int]:
    """Write ``out / path.name`` with the audio in ``codec``: ``(name, samples)``.

    An existing output is kept (resuming) and counted.
    """
    target = out / path.name
    if target.exists():
        return path.name, sum(1 for _ in read_raw_samples(target))
    return path.name, write_shard(target, _samples(path, codec))


def _source_shards(source: Path) -> tuple[list[Path], dict[str, Any]]:
    """The shards of ``source`` (a folder or its ``index.json``) and the index's other fields."""
    folder = source.parent if source.name == INDEX_NAME else source
    index_path = folder / INDEX_NAME
    if index_path.exists():
        index = json.loads(index_path.read_text())
        shards = [folder / s["name"] for s in index["shards"]]
        extra = {k: v for k, v in index.items() if k not in ("shards", "total")}
    else:
        shards, extra = sorted(folder.glob("*.tar")), {}
    missing = [str(p) for p in shards if not p.exists()]
    if missing or not shards:
        raise FileNotFoundError(f"{source}: no shards to reencode (missing: {missing[:3]})")
    return shards, extra


def reencode(
    source: str | Path, out: str | Path, codec: AudioCodec, workers: int = 1
) -> dict[str, Any]:
    """Reencode every shard of ``source`` into ``out``; returns the new index.

    Args:
        source: folder of shards (or its index.json).
        out: output folder.
        codec: audio codec of the new shards.
        workers: processes (1 or fewer: all in this process).

    Raises:
        ValueError: naming the shard and key of the first malformed sample (that shard is not
            written; shards finished before stay, and a rerun resumes).
    """
    check_choice("codec", codec, AudioCodec)
    shards, extra = _source_shards(Path(source))
    out = Path(out)
    if out.resolve() == shards[0].parent.resolve():
        raise ValueError("--out must be another folder than the source shards")
    out.mkdir(parents=True, exist_ok=True)
    job = partial(reencode_shard, out=out, codec=codec)
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            counts = dict(pool.imap_unordered(job, shards))
    else:
        counts = dict(map(job, shards))
    old = sum(p.stat().st_size for p in shards)
    new = sum((out / p.name).stat().st_size for p in shards)
    extra.update(audio_codec=codec, reencoded_from=str(Path(source).resolve()))
    index = json.loads(write_index(out, counts, **extra).read_text())
    index["size_ratio"] = new / old
    return index


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain reencode``; 0 on success, 1 on malformed or missing data."""
    description = (
        "Rewrite shards with the audio as FLAC or raw 16-bit PCM (lossless; frames and JSON "
        "copied as they are). Rerun the same command to resume."
    )
    kwargs = parse_call(reencode, "avpretrain reencode", description, argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        index = reencode(**kwargs)
    except (ValueError, FileNotFoundError) as err:
        print(f"avpretrain reencode: {err}", file=sys.stderr)
        return 1
    print(
        f"{index['total']} samples in {len(index['shards'])} shards -> {kwargs['out']} "
        f"({kwargs['codec']}); size new / old: {index['size_ratio']:.3f}"
    )
    return 0
