"""Random views of a frame batch for the within-video contrastive term.

A view permutes the colour channels and scales their brightness (colour is nuisance: the
synthetic world draws each object's colour independently of its class, and in real video an
object's colour names it less than its shape), optionally turns the frame grey, and takes a
random resized crop with a random horizontal flip (one affine warp per sample, sampled
bilinearly). Two views of one clip keep what names an object (shape, texture) and differ in
colour, scale and position, so an InfoNCE between them teaches the encoder to see shape:
SimCLR's recipe (crop, flip, colour distortion) in a batched, per-sample form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def colour_view(
    video: Tensor, grey_prob: float = 0.2, generator: torch.Generator | None = None
) -> Tensor:
    """Per-sample random channel permutation, channel gains in [0.6, 1.4] and greyscale.

    Args:
        video: [B, 3, H, W] frames or [B, 3, F, H, W] clips (every frame of a clip gets the same
            colour change), normalised or not.
        grey_prob: chance that a sample becomes the mean of its (permuted, scaled) channels.
        generator: random source (on ``video``'s device); None uses the global RNG.

    Returns:
        the same shape, dtype and device.
    """
    if video.ndim not in (4, 5) or video.shape[1] != 3:
        raise ValueError(f"colour_view needs [B, 3, ...] frames, got {tuple(video.shape)}")
    b, device = video.shape[0], video.device
    order = torch.rand(b, 3, generator=generator, device=device).argsort(dim=1)
    index = order.view(b, 3, *([1] * (video.ndim - 2))).expand_as(video)
    gains = 0.6 + 0.8 * torch.rand(b, 3, generator=generator, device=device)
    out = video.gather(1, index) * gains.view(b, 3, *([1] * (video.ndim - 2))).to(video.dtype)
    grey = torch.rand(b, generator=generator, device=device) < grey_prob
    mono = out.mean(dim=1, keepdim=True).expand_as(out)
    return torch.where(grey.view(b, *([1] * (video.ndim - 1))), mono, out)


def crop_view(
    video: Tensor,
    min_scale: float = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per-sample random resized crop (area fraction in [min_scale, 1], square) and h-flip.

    The crop is an affine warp of the whole frame sampled bilinearly back to the input size
    (``F.affine_grid`` + ``F.grid_sample``); it never reaches outside the frame.

    Args:
        video: [B, C, H, W] frames or [B, C, F, H, W] clips (one crop for all frames of a clip).
        min_scale: smallest crop area as a fraction of the frame, in (0, 1].
        generator: random source (on ``video``'s device); None uses the global RNG.

    Returns:
        the same shape, dtype and device.
    """
    if video.ndim not in (4, 5):
        raise ValueError(f"crop_view needs [B, C, H, W] or [B, C, F, H, W], got {video.shape}")
    if not 0 < min_scale <= 1:
        raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
    shape, b, device = video.shape, video.shape[0], video.device
    frames = video.flatten(1, 2) if video.ndim == 5 else video  # [B, C*F, H, W]
    side = torch.sqrt(
        min_scale + (1 - min_scale) * torch.rand(b, generator=generator, device=device)
    )
    free = 1 - side  # the crop's centre may move this far (grid units of [-1, 1] halves)
    shift = (2 * torch.rand(b, 2, generator=generator, device=device) - 1) * free[:, None]
    flip = torch.where(torch.rand(b, generator=generator, device=device) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=device)
    theta[:, 0, 0] = side * flip.to(device)
    theta[:, 1, 1] = side
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(frames.dtype), list(frames.shape), align_corners=False)
    out = F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.view(shape)


def augmented_view(
    video: Tensor, min_scale: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """One random view of every sample: :func:`colour_view` then :func:`crop_view`.

    Args:
        video: [B, 3, H, W] frames or [B, 3, F, H, W] clips.
        min_scale: smallest crop area fraction.
        generator: random source; None uses the global RNG.

    Returns:
        the same shape, dtype and device.
    """
    return crop_view(colour_view(video, generator=generator), min_scale, generator)
