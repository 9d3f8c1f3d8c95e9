"""Video frames: JPEG decoding, frame choice and the 224 x 224 ImageNet-normalised transform.

CAV-MAE's recipe: train on one random stored frame (random resized crop + flip), evaluate on
the middle frame (resize + center crop). Multi-frame clips get one crop shared by all frames.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor
from torchvision.io import ImageReadMode
from torchvision.io import decode_jpeg as _tv_decode_jpeg
from torchvision.transforms import InterpolationMode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_SCALE = (0.5, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)


def decode_jpeg(data: bytes) -> Tensor:
    """Decode JPEG bytes (libjpeg-turbo through torchvision) to RGB.

    Returns:
        [3, H, W] uint8; greyscale JPEGs are expanded to three channels.
    """
    # bytearray: torch.frombuffer warns on read-only buffers such as bytes.
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    try:
        return _tv_decode_jpeg(raw, mode=ImageReadMode.RGB)
    except RuntimeError as err:
        raise ValueError(f"could not decode JPEG of {len(data)} bytes: {err}") from err


def choose_frame_index(
    num_frames: int, train: bool, generator: torch.Generator | None = None
) -> int:
    """Which stored frame to use: uniform random when training, the middle one otherwise."""
    if num_frames < 1:
        raise ValueError(f"choose_frame_index: a clip needs at least one frame, got {num_frames}")
    if not train:
        return num_frames // 2
    return int(torch.randint(num_frames, (1,), generator=generator).item())


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return torch.empty(1).uniform_(low, high, generator=generator).item()


def random_resized_crop_params(
    height: int,
    width: int,
    scale: tuple[float, float] = CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """Crop box ``(top, left, h, w)``: the draws of ``v2.RandomResizedCrop``, but seedable.

    Up to ten tries at an area fraction in ``scale`` and a log-uniform aspect ratio in ``ratio``;
    falls back to the largest central crop with a ratio inside ``ratio``.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * _uniform(scale[0], scale[1], generator)
        aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], generator))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator).item())
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator).item())
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class FrameCrop(NamedTuple):
    """A training crop box in stored-frame pixels and whether to flip.

    A tuple, so batches carry it as it is to the device.
    """

    top: int
    left: int
    height: int
    width: int
    flip: bool


def draw_frame_crop(
    height: int, width: int, train: bool, generator: torch.Generator | None = None
) -> FrameCrop | None:
    """The random resized crop and flip of a training frame of ``height`` x ``width``.

    ``None`` (resize and center crop) when not training. Drawn in this order from ``generator``.
    """
    if not train:
        return None
    top, left, h, w = random_resized_crop_params(height, width, generator=generator)
    flip = torch.rand(1, generator=generator).item() < 0.5
    return FrameCrop(top, left, h, w, flip)


def crop_resize(img: Tensor, crop: FrameCrop | None, size: int) -> Tensor:
    """Apply a crop from :func:`draw_frame_crop`, on uint8 (antialiased bilinear), on any device.

    Args:
        img: [..., 3, H, W] uint8.
        crop: the training crop and flip, or ``None``: resize the short side, center crop.
        size: output side.

    Returns:
        [..., 3, size, size] uint8.
    """
    if crop is None:
        return TF.center_crop(TF.resize(img, [size], antialias=True), [size, size])
    img = TF.resized_crop(
        img, crop.top, crop.left, crop.height, crop.width, [size, size], antialias=True
    )
    return TF.horizontal_flip(img) if crop.flip else img


def normalize_frames(img: Tensor) -> Tensor:
    """uint8 [..., 3, H, W] -> float32 ImageNet-normalised."""
    img = TF.to_dtype(img, torch.float32, scale=True)
    return TF.normalize(img, list(IMAGENET_MEAN), list(IMAGENET_STD))


def frame_transform(
    img: Tensor,
    size: int = 224,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Crop, resize and normalise a frame (or frames sharing one crop).

    Eval: resize the short side to ``size``, center crop. Train: random resized crop with area
    fraction in (0.5, 1) and ratio in (3/4, 4/3), then horizontal flip with probability 0.5.
    Resizing runs on uint8 (antialiased bilinear), before the float conversion, for speed.

    Args:
        img: [..., 3, H, W] uint8.
        size: output side.
        train: random augmentation if True.
        generator: RNG for the crop and flip.

    Returns:
        [..., 3, size, size] float32, normalised with ImageNet mean/std.
    """
    if img.dtype != torch.uint8 or img.dim() < 3 or img.shape[-3] != 3:
        raise ValueError(
            f"frame_transform expects uint8 [..., 3, H, W], got {img.dtype} {img.shape}"
        )
    crop = draw_frame_crop(img.shape[-2], img.shape[-1], train, generator)
    return normalize_frames(crop_resize(img, crop, size))


def frames_to_clip(
    frames: list[Tensor],
    size: int = 224,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Stack decoded frames into a clip with one shared crop/flip (multi-frame mode).

    Args:
        frames: F tensors [3, H, W] uint8 of equal size, in temporal order.
        size: output side.
        train: random augmentation if True.
        generator: RNG for the shared crop and flip.

    Returns:
        [3, F, size, size] float32, channel-first as video models (VideoMAE tubelets) expect.
    """
    if not frames:
        raise ValueError("frames_to_clip: no frames")
    clip = frame_transform(torch.stack(frames), size, train, generator)  # [F, 3, S, S]
    return clip.transpose(0, 1)


def mask_transform(mask: Tensor, size: int) -> Tensor:
    """The evaluation frame transform for a mask, so spatial targets stay aligned.

    As :func:`frame_transform` with ``train=False``, so a mask stays aligned with its frame.

    Args:
        mask: [H, W] (any dtype; nonzero = foreground).
        size: output side (the loader's ``frame_size``).

    Returns:
        [size, size] float32 of 0/1.
    """
    m = (mask != 0).to(torch.uint8)[None]
    m = TF.resize(m, [size], interpolation=InterpolationMode.NEAREST_EXACT, antialias=False)
    return TF.center_crop(m, [size, size])[0].float()
