"""Writing converter-made samples straight into shards.

For what ``avpretrain ingest`` cannot make: benchmarks released as extracted frames, or with mask
images.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
import torchaudio

from avpretrain.data.shards import shard_name, write_shard


def write_shards(
    samples: Iterable[dict[str, Any]], out_dir: str | Path, shard_size: int
) -> dict[str, int]:
    """Write ``samples`` into ``shard-000000.tar``, ... of ``shard_size`` each.

    The caller then writes ``index.json`` (:func:`~avpretrain.data.shards.write_index` with these
    counts and its summary, known once the samples are consumed).

    Args:
        samples: webdataset sample dicts (``encode_sample`` plus any extra members), consumed
            lazily.
        out_dir: a new or empty folder (a rerun into a folder with shards would mix them).
        shard_size: samples per shard (the last one may hold fewer).

    Returns:
        Sample count per shard name.

    Raises:
        ValueError: ``out_dir`` already holds shards, or ``shard_size`` < 1.
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.glob("*.tar")):
        raise ValueError(f"{out}: already holds shards; write to an empty folder")
    counts: dict[str, int] = {}
    pending: list[dict[str, Any]] = []
    for sample in samples:
        pending.append(sample)
        if len(pending) == shard_size:
            name = shard_name("shard", len(counts))
            counts[name] = write_shard(out / name, pending)
            pending = []
    if pending:
        name = shard_name("shard", len(counts))
        counts[name] = write_shard(out / name, pending)
    return counts


def safe_key(name: str) -> str:
    """A webdataset key from a benchmark's id.

    Characters outside ``[A-Za-z0-9_-]`` become ``-`` (keys may hold neither dots nor slashes).
    """
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """An audio file (WAV, FLAC, ...) as mono float32 [samples] at ``sample_rate``.

    Channels are averaged; the file is resampled with torchaudio when its rate differs.
    """
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = torch.from_numpy(audio.mean(axis=1))
    if rate != sample_rate:
        mono = torchaudio.functional.resample(mono, rate, sample_rate)
    return mono.numpy()
