"""Per-sample patch masking: random (MAE) and structured time / frequency audio masks.

Every function returns the same triple, with the same number K of kept patches for every
sample, so visible tokens batch without padding:

- ``ids_keep`` [B, K]: indices (row-major grid order) of the patches the encoder sees;
- ``mask`` [B, N] float: 1 where a patch is masked (to be reconstructed), 0 where kept;
- ``ids_restore`` [B, N]: puts ``[kept tokens, mask tokens]`` back into grid order
  (``torch.gather(seq, 1, ids_restore)``), as MAE's decoder does.

Masks are drawn with an optional ``torch.Generator`` so validation masks are reproducible.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from avpretrain.arguments import check_choice

AudioMaskMode = Literal["random", "time", "frequency", "time_frequency"]


def check_ratio(ratio: float) -> None:
    """Raise ValueError unless ``0 <= ratio < 1``."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")


def num_kept(num_patches: int, ratio: float) -> int:
    """Kept patches for a mask ratio: ``int(N * (1 - ratio))``, MAE's rounding."""
    check_ratio(ratio)
    return int(num_patches * (1 - ratio))


def _device(generator: torch.Generator | None, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return generator.device if generator is not None else torch.device("cpu")


def masks_from_noise(noise: Tensor, keep: int) -> tuple[Tensor, Tensor, Tensor]:
    """Keep the ``keep`` patches of lowest noise in each row (MAE's argsort trick).

    Args:
        noise: [B, N] scores; lower is kept first.
        keep: K, patches kept per sample.

    Returns:
        (ids_keep [B, K], mask [B, N], ids_restore [B, N]), see the module docstring.
    """
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones_like(noise, dtype=torch.float32)
    mask[:, :keep] = 0
    return ids_shuffle[:, :keep], torch.gather(mask, 1, ids_restore), ids_restore


def random_masking(
    batch: int,
    num_patches: int,
    ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Uniform random masking of ``ratio`` of the patches, per sample (MAE).

    Args:
        batch: B.
        num_patches: N.
        ratio: fraction masked; ``K = int(N * (1 - ratio))`` patches are kept.
        generator: random source (its device is used when ``device`` is None).
        device: where the indices live.

    Returns:
        (ids_keep [B, K], mask [B, N], ids_restore [B, N]).
    """
    keep = num_kept(num_patches, ratio)
    noise = torch.rand(batch, num_patches, generator=generator, device=_device(generator, device))
    return masks_from_noise(noise, keep)


def _random_lines(
    batch: int, length: int, count: int, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """[B, length] bool, ``count`` randomly chosen True entries per row."""
    noise = torch.rand(batch, length, generator=generator, device=device)
    rank = torch.argsort(torch.argsort(noise, dim=1), dim=1)
    return rank < count


def structured_audio_masking(
    batch: int,
    grid: tuple[int, int],
    ratio: float,
    mode: AudioMaskMode,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Mask whole time columns and/or frequency rows of a (F', T') spectrogram patch grid.

    As CAV-MAE's structured masks: first whole lines are masked, then the remaining patches
    are masked at random until exactly ``K = int(N * (1 - ratio))`` are kept, the same K as
    :func:`random_masking`, so the encoder cost does not depend on the mode.

    - ``time``: ``int(T' * ratio)`` whole time columns;
    - ``frequency``: ``int(F' * ratio)`` whole frequency rows;
    - ``time_frequency``: both, each axis at ``r = 1 - sqrt(1 - ratio)`` so that the area left
      after the lines, ``(1 - r)^2 >= 1 - ratio``, still holds K patches.

    Args:
        batch: B.
        grid: (F', T') patch grid, frequency rows by time columns (row-major tokens).
        ratio: overall fraction masked.
        mode: "time", "frequency" or "time_frequency" ("random" defers to random_masking).
        generator: random source.
        device: where the indices live.

    Returns:
        (ids_keep [B, K], mask [B, N], ids_restore [B, N]).
    """
    rows, cols = grid
    if mode == "random":
        return random_masking(batch, rows * cols, ratio, generator, device)
    check_choice("audio mask mode", mode, AudioMaskMode)
    keep = num_kept(rows * cols, ratio)
    device = _device(generator, device)
    axis_ratio = ratio if mode != "time_frequency" else 1.0 - math.sqrt(1.0 - ratio)
    lines = torch.zeros(batch, rows, cols, dtype=torch.bool, device=device)
    if mode in ("time", "time_frequency"):
        masked_cols = _random_lines(batch, cols, int(cols * axis_ratio), generator, device)
        lines |= masked_cols[:, None, :]
    if mode in ("frequency", "time_frequency"):
        masked_rows = _random_lines(batch, rows, int(rows * axis_ratio), generator, device)
        lines |= masked_rows[:, :, None]
    noise = torch.rand(batch, rows, cols, generator=generator, device=device)
    # Noise lies in [0, 1): +2 puts every patch on a masked line behind all the others.
    noise = (noise + 2.0 * lines).reshape(batch, rows * cols)
    return masks_from_noise(noise, keep)
