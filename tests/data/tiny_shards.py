"""Tiny hand-made shards for the loader tests (independent of the synthetic world).

Frame ``i`` of every clip is a solid colour (``FRAME_COLOURS[i]``), so tests can tell which
stored frame a batch holds; the audio is a tone whose frequency depends on the clip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avpretrain.data.schema import encode_sample, make_meta
from avpretrain.data.shards import shard_name, write_index, write_shard

FRAME_COLOURS = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (0, 250, 250)]


def tiny_sample(
    key: str,
    labels: list[int],
    num_frames: int = 4,
    seconds: float = 0.5,
    sample_rate: int = 16000,
    size: int = 16,
    audio_codec: str = "flac",
) -> dict:
    """One encoded clip: solid-colour frames, a tone, a JSON record with ``labels``."""
    frames = [np.full((size, size, 3), FRAME_COLOURS[i], np.uint8) for i in range(num_frames)]
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    seed = sum(map(ord, key))
    freq = 200.0 + 50.0 * (seed % 20)
    # A little noise and DC, as in recorded audio (a pure tone leaves high mel bins at the
    # 16-bit quantisation floor, where float32 rounding alone moves log energies by ~1e-4).
    noise = np.random.default_rng(seed).standard_normal(t.shape[0])
    audio = 0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * noise + 0.01
    times = list(np.linspace(0, seconds, num_frames, endpoint=False))
    meta = make_meta(key, 0.0, seconds, sample_rate, times, labels=labels)
    return encode_sample(key, frames, audio, meta, audio_codec=audio_codec)


def write_tiny_shards(
    folder: Path, sizes: list[int], prefix: str = "shard", index: bool = True, **sample_kw
) -> list[Path]:
    """Write ``len(sizes)`` shards holding ``sizes[i]`` clips each; keys ``s{i}k{j}``.

    Labels cycle through 0..3; every third clip has two labels, every fifth none.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, n in enumerate(sizes):
        samples = []
        for j in range(n):
            labels = [] if j % 5 == 4 else [j % 4] + ([(j + 1) % 4] if j % 3 == 2 else [])
            samples.append(tiny_sample(f"s{i}k{j}", labels, **sample_kw))
        path = folder / shard_name(prefix, i)
        write_shard(path, samples)
        paths.append(path)
    if index:
        write_index(folder, {p.name: n for p, n in zip(paths, sizes, strict=True)})
    return paths
