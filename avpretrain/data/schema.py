"""The shard schema: one webdataset sample per clip, shared by ingest, synth and the loaders.

A sample is a group of tar members sharing a key (``<key>.<ext>``)::

    <key>.f00.jpg ... <key>.f09.jpg   frames, evenly spaced over the clip (JPEG)
    <key>.flac or <key>.pcm16         audio, mono, ``meta["sample_rate"]`` Hz (16 kHz by default):
                                      16-bit FLAC or raw little-endian int16 (``audio_codec``)
    <key>.json                        metadata (fields below)
    <key>.gt.npz                      synthetic world only: masks [F, H, W] uint8 (object index + 1,
                                      0 = background) and sources [S, samples] float32

JSON fields (the ACAV-1M paper's Table 14 plus what the loaders need)::

    video_id, start, end          source video and clip timestamps in seconds
    caption                       str or None
    scores                        {text_audio, text_visual, audio_visual, temporal}: float or None
    category                      str or None (primary class name)
    labels                        list[int] class indices (multi-label), the primary class (the
                                  category) first; possibly empty
    sample_rate, num_frames       audio rate, number of stored frames
    frame_times                   list[float]: time of each frame from clip start, seconds
    flags                         {no_audio, padded, audio_gap, video_gap, size_changed}: bool,
                                  set by ingest (:class:`avpretrain.data.ingest.decode.DecodedClip`)
    synthetic                     synthetic world only: objects, events, questions, corruption
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from PIL import Image

from avpretrain.data.audio_codec import AudioCodec, encode_audio

SCORE_KEYS = ("text_audio", "text_visual", "audio_visual", "temporal")
JSON_EXT = "json"
GT_EXT = "gt.npz"


def frame_ext(index: int) -> str:
    """Extension of the ``index``-th frame: ``f00.jpg``, ``f01.jpg``, ..."""
    return f"f{index:02d}.jpg"


def frame_exts(sample: dict[str, Any]) -> list[str]:
    """Frame extensions present in a raw sample, in temporal order."""
    return sorted(k for k in sample if k.startswith("f") and k.endswith(".jpg"))


def empty_scores() -> dict[str, float | None]:
    """Scores before curation: every alignment score unknown."""
    return dict.fromkeys(SCORE_KEYS)


def make_meta(
    video_id: str,
    start: float,
    end: float,
    sample_rate: int,
    frame_times: list[float],
    caption: str | None = None,
    category: str | None = None,
    labels: list[int] | None = None,
    flags: dict[str, bool] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build the JSON record of one clip with every schema field present."""
    meta = {
        "video_id": video_id,
        "start": float(start),
        "end": float(end),
        "caption": caption,
        "scores": empty_scores(),
        "category": category,
        "labels": list(labels or []),
        "sample_rate": int(sample_rate),
        "num_frames": len(frame_times),
        "frame_times": [float(t) for t in frame_times],
        "flags": {"no_audio": False, "padded": False, **(flags or {})},
    }
    meta.update(extra)
    return meta


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    """Encode one RGB frame.

    Args:
        frame: [H, W, 3] uint8.
        quality: JPEG quality (1-95, as Pillow takes it).
    """
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_sample(
    key: str,
    frames: list[np.ndarray],
    audio: np.ndarray,
    meta: dict[str, Any],
    gt: dict[str, np.ndarray] | None = None,
    jpeg_quality: int = 90,
    audio_codec: AudioCodec = "flac",
) -> dict[str, Any]:
    """Turn one decoded clip into a webdataset sample dict (``__key__`` plus encoded members).

    Args:
        key: unique sample key (no dots or slashes).
        frames: list of [H, W, 3] uint8 frames.
        audio: [samples] float mono at ``meta["sample_rate"]``.
        meta: the JSON record (see :func:`make_meta`).
        gt: optional synthetic ground-truth arrays, stored as ``gt.npz``.
        jpeg_quality: JPEG quality of the frames.
        audio_codec: ``flac`` or ``pcm`` (:mod:`avpretrain.data.audio_codec`).
    """
    if "." in key or "/" in key:
        raise ValueError(f"sample key {key!r} must not contain '.' or '/'")
    sample: dict[str, Any] = {"__key__": key}
    for i, frame in enumerate(frames):
        sample[frame_ext(i)] = encode_jpeg(frame, jpeg_quality)
    ext, data = encode_audio(audio, meta["sample_rate"], audio_codec)
    sample[ext] = data
    sample[JSON_EXT] = json.dumps(meta).encode("utf-8")
    if gt is not None:
        buf = io.BytesIO()
        np.savez_compressed(buf, **gt)  # type: ignore[arg-type]  # names, not allow_pickle
        sample[GT_EXT] = buf.getvalue()
    return sample
