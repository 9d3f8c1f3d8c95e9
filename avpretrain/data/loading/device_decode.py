"""Frames decoded on the device: workers pass JPEG bytes and crops, the batch is decoded at once.

With ``frames_on_device`` the loader workers neither decode nor resize frames. Each sample
carries ``frames_jpeg`` (its chosen frames' JPEG bytes) and ``frame_crop`` (the crop and flip,
drawn in the worker from the same generator, in the same order, as the worker-side
:func:`video.frame_transform`). After the batch is on the device, :func:`decode_frame_batch`
decodes all JPEGs with one ``torchvision.io.decode_jpeg`` call (nvJPEG, batched, on CUDA;
libjpeg-turbo on the CPU), crops and resizes each sample, then flips are applied and the batch is
normalised at once. On the CPU the result equals the worker-side path exactly; on CUDA, nvJPEG's
decode and the float resize differ from libjpeg-turbo's by a few levels.

Both keys are plain Python values (bytes, tuples), so Lightning's device transfer leaves them on
the host, where ``decode_jpeg`` wants its input.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import torch
from torch import Tensor
from torchvision.io import ImageReadMode, decode_jpeg

from avpretrain.data.loading.video import FrameCrop, crop_resize, draw_frame_crop, normalize_frames

logger = logging.getLogger("avpretrain.data")

JPEG_KEY = "frames_jpeg"
CROP_KEY = "frame_crop"


# Start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the size.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD9)])


def jpeg_size(data: bytes) -> tuple[int, int]:
    """``(height, width)`` of a JPEG, read from its start-of-frame header.

    Walks the marker segments up to the first SOF (a few microseconds; opening the image with
    PIL for its size cost about 0.3 ms, a third of a bytes-only worker's time per sample).

    Raises:
        ValueError: when the bytes are not a JPEG or end before a frame header.
    """
    if data[:2] != b"\xff\xd8":
        raise ValueError(f"not a JPEG ({len(data)} bytes starting {data[:4]!r})")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"malformed JPEG: no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in _SOF and pos + 9 <= len(data):
            return int.from_bytes(data[pos + 5 : pos + 7], "big"), int.from_bytes(
                data[pos + 7 : pos + 9], "big"
            )
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before
            break
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    raise ValueError(f"could not read the JPEG header of {len(data)} bytes: no frame header")


def frame_bytes(
    frames: list[bytes], train: bool, generator: torch.Generator | None = None
) -> dict[str, Any]:
    """The worker half: the chosen frames' bytes and their crop (shared by a clip's frames).

    Args:
        frames: JPEG bytes of the chosen frame(s), in temporal order.
        train: draw a random crop and flip (reading the first frame's header for its size);
            otherwise the crop is ``None`` (resize and center crop).
        generator: RNG for the crop and flip.

    Returns:
        ``{"frames_jpeg": list[bytes], "frame_crop": FrameCrop | None}``.
    """
    if not frames:
        raise ValueError("no frames")
    crop = draw_frame_crop(*jpeg_size(frames[0]), train, generator) if train else None
    return {JPEG_KEY: list(frames), CROP_KEY: crop}


def _decode(raw: list[Tensor], device: torch.device) -> list[Tensor | None]:
    """Decode all at once; if that fails, one by one so only the broken images are lost."""
    try:
        return list(decode_jpeg(raw, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:
        decoded: list[Tensor | None] = []
        for data in raw:
            try:
                decoded.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                decoded.append(None)
        return decoded


def decode_frame_batch(
    jpegs: list[list[bytes]],
    crops: list[FrameCrop | None],
    size: int,
    device: torch.device | str,
) -> tuple[Tensor, list[int]]:
    """The device half: decode, crop, resize, flip and normalise a batch.

    Args:
        jpegs: B lists of F JPEG bytes (``frames_jpeg`` of a batch).
        crops: B crops (``frame_crop``).
        size: output side.
        device: where to decode (``cuda`` uses nvJPEG).

    Returns:
        ``(video, kept)``: video [B', 3, size, size] float32 (or [B', 3, F, size, size] with
        F > 1 frames per clip), and the indices of the B' samples whose JPEGs decoded.
    """
    device = torch.device(device)
    counts = [len(frames) for frames in jpegs]
    # bytearray: torch.frombuffer warns on read-only buffers such as bytes.
    raw = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for frames in jpegs for b in frames]
    images = _decode(raw, device)
    clips, kept, start = [], [], 0
    for i, (count, crop) in enumerate(zip(counts, crops, strict=True)):
        frames, start = images[start : start + count], start + count
        if any(f is None for f in frames):
            continue
        decoded = cast("list[Tensor]", frames)  # no None left
        stacked = decoded[0][None] if count == 1 else torch.stack(decoded)  # [F, 3, H, W]
        clips.append(crop_resize(stacked, crop, size))
        kept.append(i)
    if not clips:
        raise ValueError(f"none of the {len(jpegs)} samples' JPEGs could be decoded")
    video = normalize_frames(torch.stack(clips))  # [B', F, 3, S, S]
    if max(counts) == 1:
        return video[:, 0], kept
    return video.transpose(1, 2), kept


def decode_frames_in_batch(
    batch: dict[str, Any], size: int, device: torch.device | str
) -> tuple[dict[str, Any], int]:
    """Replace ``frames_jpeg`` / ``frame_crop`` by ``video``.

    Samples whose JPEG is broken are dropped from every batch entry (logged by key).

    Returns:
        ``(batch, dropped)``.
    """
    jpegs, crops = batch.pop(JPEG_KEY), batch.pop(CROP_KEY)
    video, kept = decode_frame_batch(jpegs, crops, size, device)
    total = len(jpegs)
    if len(kept) < total:
        lost = sorted(set(range(total)) - set(kept))
        keys = [batch["key"][i] for i in lost] if "key" in batch else lost
        logger.warning("skipped samples %s: a JPEG frame failed to decode on %s", keys, device)
        batch = {name: _take(value, kept, total) for name, value in batch.items()}
    batch["video"] = video
    return batch, total - len(kept)


def _take(value: Any, kept: list[int], total: int) -> Any:
    """The ``kept`` rows of a batch entry with ``total`` rows (other entries unchanged)."""
    if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == total:
        return value[torch.tensor(kept, device=value.device)]
    if isinstance(value, list) and len(value) == total:
        return [value[i] for i in kept]
    return value
