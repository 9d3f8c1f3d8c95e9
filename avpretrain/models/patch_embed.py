"""Patch embedding (Conv2d for images and spectrograms, Conv3d for tubelets) and patchify.

The token order of :meth:`PatchEmbed.forward` and of :func:`patchify` is the same: row-major
over the patch grid, ``(rows, cols)`` for 2-D inputs and ``(time, rows, cols)`` for clips.
Within a patch, pixels are laid out ``(tubelet, row, col, channel)`` as MAE / MAE-ST.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from einops import rearrange
from torch import Tensor, nn


def patchify(x: Tensor, patch_size: tuple[int, int], tubelet: int = 1) -> Tensor:
    """Cut an image, spectrogram or clip into flattened patches (the reconstruction target).

    Args:
        x: [B, C, H, W], or [B, C, F, H, W] for clips.
        patch_size: (ph, pw).
        tubelet: frames per patch for clips.

    Returns:
        [B, N, P] with ``P = tubelet * ph * pw * C`` (``tubelet`` only for clips).
    """
    ph, pw = patch_size
    if x.ndim == 4:
        return rearrange(x, "b c (h p) (w q) -> b (h w) (p q c)", p=ph, q=pw)
    if x.ndim == 5:
        return rearrange(x, "b c (t u) (h p) (w q) -> b (t h w) (u p q c)", u=tubelet, p=ph, q=pw)
    raise ValueError(f"patchify expects [B, C, H, W] or [B, C, F, H, W], got {tuple(x.shape)}")


def unpatchify(
    patches: Tensor, grid: tuple[int, ...], patch_size: tuple[int, int], tubelet: int = 1
) -> Tensor:
    """Inverse of :func:`patchify`.

    Args:
        patches: [B, N, P] with ``N = prod(grid)``.
        grid: (rows, cols), or (time, rows, cols) for clips.
        patch_size: (height, width) of a patch.
        tubelet: frames per patch along time (clips only).

    Returns:
        [B, C, H, W], or [B, C, F, H, W] when ``grid`` has three entries.
    """
    ph, pw = patch_size
    if patches.shape[1] != math.prod(grid):
        raise ValueError(f"unpatchify: {patches.shape[1]} patches do not fill grid {grid}")
    if len(grid) == 2:
        h, w = grid
        return rearrange(patches, "b (h w) (p q c) -> b c (h p) (w q)", h=h, w=w, p=ph, q=pw)
    t, h, w = grid
    return rearrange(
        patches,
        "b (t h w) (u p q c) -> b c (t u) (h p) (w q)",
        t=t,
        h=h,
        w=w,
        u=tubelet,
        p=ph,
        q=pw,
    )


class PatchEmbed(nn.Module):
    """Linear patch embedding as a strided convolution.

    Args:
        patch_size: (ph, pw).
        in_chans: input channels (1 for spectrograms, 3 for RGB).
        embed_dim: token width D.
        tubelet: frames per patch; ``None`` builds a Conv2d for [B, C, H, W] inputs, an int a
            Conv3d for [B, C, F, H, W] clips.
    """

    def __init__(
        self,
        patch_size: tuple[int, int],
        in_chans: int,
        embed_dim: int,
        tubelet: int | None = None,
    ) -> None:
        super().__init__()
        self.patch_size = cast("tuple[int, int]", tuple(patch_size))
        self.tubelet = tubelet
        self.proj: nn.Conv2d | nn.Conv3d
        if tubelet is None:
            self.proj = nn.Conv2d(in_chans, embed_dim, self.patch_size, stride=self.patch_size)
        else:
            kernel = (tubelet, *self.patch_size)
            self.proj = nn.Conv3d(in_chans, embed_dim, kernel, stride=kernel)

    def grid_for(self, shape: torch.Size | tuple[int, ...]) -> tuple[int, ...]:
        """Patch grid of an input shape: (rows, cols), or (time, rows, cols) for clips."""
        spatial = tuple(shape[2:])
        kernel = self.patch_size if self.tubelet is None else (self.tubelet, *self.patch_size)
        if len(spatial) != len(kernel):
            want = "[B, C, H, W]" if self.tubelet is None else "[B, C, F, H, W]"
            raise ValueError(f"patch embedding expects {want}, got {tuple(shape)}")
        if any(s % k for s, k in zip(spatial, kernel, strict=True)):
            raise ValueError(f"input size {spatial} is not divisible by the patch size {kernel}")
        return tuple(s // k for s, k in zip(spatial, kernel, strict=True))

    def forward(self, x: Tensor) -> Tensor:
        """Embed patches: [B, C, H, W] or [B, C, F, H, W] -> [B, N, D], row-major over the grid."""
        self.grid_for(x.shape)
        return self.proj(x).flatten(2).transpose(1, 2)
