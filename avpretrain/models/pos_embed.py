"""Fixed sin-cos position embeddings (2-D as MAE, 3-D for tubelets) and their resizing.

Layout follows MAE's ``get_2d_sincos_pos_embed`` so imported MAE / AudioMAE / CAV-MAE tables
line up with ours: tokens are row-major over the grid, the first half of the channels encodes
the column (width / time) coordinate and the second half the row (height / frequency).
Tables are built in float64 (as MAE's NumPy code) and returned as float32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def sincos_1d(embed_dim: int, positions: Tensor) -> Tensor:
    """1-D sin-cos embedding, ``omega_i = 1 / 10000^(2i / D)``.

    Args:
        embed_dim: output width D (even).
        positions: [M] positions (any shape; flattened).

    Returns:
        [M, D] float64: ``sin(pos * omega)`` in the first half, ``cos`` in the second.
    """
    if embed_dim % 2:
        raise ValueError(f"sin-cos embedding needs an even width, got {embed_dim}")
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)
    omega = 1.0 / 10000**omega
    out = positions.reshape(-1).to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_2d(embed_dim: int, grid: tuple[int, int]) -> Tensor:
    """2-D sin-cos embedding over a ``(rows, cols)`` grid, as MAE.

    Returns:
        [rows * cols, D] float32, row-major; channels ``[:D/2]`` encode the column index,
        ``[D/2:]`` the row index.
    """
    if embed_dim % 4:
        raise ValueError(f"2-D sin-cos embedding needs a width divisible by 4, got {embed_dim}")
    rows, cols = grid
    row_idx, col_idx = torch.meshgrid(
        torch.arange(rows, dtype=torch.float64),
        torch.arange(cols, dtype=torch.float64),
        indexing="ij",
    )
    emb = torch.cat([sincos_1d(embed_dim // 2, col_idx), sincos_1d(embed_dim // 2, row_idx)], 1)
    return emb.float()


def sincos_3d(embed_dim: int, grid: tuple[int, int, int]) -> Tensor:
    """3-D sin-cos embedding over a ``(time, rows, cols)`` grid.

    The channels are split, not summed, so every position stays unambiguous: the first
    ``D/4`` encode time (1-D sin-cos), the remaining ``3D/4`` the 2-D spatial position
    (laid out as :func:`sincos_2d`).

    Returns:
        [time * rows * cols, D] float32, row-major over ``(time, rows, cols)``.
    """
    if embed_dim % 16:
        raise ValueError(f"3-D sin-cos embedding needs a width divisible by 16, got {embed_dim}")
    t, rows, cols = grid
    dim_t = embed_dim // 4
    temporal = sincos_1d(dim_t, torch.arange(t, dtype=torch.float64)).float()  # [t, D/4]
    spatial = sincos_2d(embed_dim - dim_t, (rows, cols))  # [rows*cols, 3D/4]
    temporal = temporal[:, None, :].expand(t, rows * cols, dim_t)
    spatial = spatial[None].expand(t, rows * cols, embed_dim - dim_t)
    return torch.cat([temporal, spatial], dim=2).reshape(t * rows * cols, embed_dim)


def sincos_pos_embed(embed_dim: int, grid: tuple[int, ...], num_prefix_tokens: int = 0) -> Tensor:
    """Sin-cos table for a 2-D or 3-D grid, with zero rows for prefix (cls) tokens as MAE.

    Returns:
        [1, num_prefix_tokens + prod(grid), D] float32.
    """
    if len(grid) == 2:
        table = sincos_2d(embed_dim, grid)
    elif len(grid) == 3:
        table = sincos_3d(embed_dim, grid)
    else:
        raise ValueError(f"position grid must have 2 or 3 dimensions, got {grid}")
    prefix = torch.zeros(num_prefix_tokens, embed_dim)
    return torch.cat([prefix, table], dim=0)[None]


def interpolate_pos_embed(
    pos_embed: Tensor, old_grid: tuple[int, ...], new_grid: tuple[int, ...], num_prefix_tokens: int
) -> Tensor:
    """Resize a (learned or imported) table: bicubic on 2-D grids, trilinear on 3-D ones.

    2-D resizing matches ``timm.layers.resample_abs_pos_embed`` (bicubic, antialias); prefix
    rows are kept as they are.

    Args:
        pos_embed: [1, prefix + prod(old_grid), D].
        old_grid: the patch grid ``pos_embed`` was made for.
        new_grid: the patch grid wanted.
        num_prefix_tokens: leading rows without a grid position (class token).

    Returns:
        [1, prefix + prod(new_grid), D] in ``pos_embed``'s dtype.
    """
    if len(old_grid) != len(new_grid):
        raise ValueError(f"cannot resize a {old_grid} position grid to {new_grid}")
    expected = num_prefix_tokens + math.prod(old_grid)
    if pos_embed.shape[1] != expected:
        raise ValueError(
            f"position table has {pos_embed.shape[1]} rows; grid {old_grid} with "
            f"{num_prefix_tokens} prefix tokens needs {expected}"
        )
    prefix, table = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = table.shape[-1]
    table = table.float().reshape(1, *old_grid, dim).movedim(-1, 1)
    if len(old_grid) == 2:
        table = F.interpolate(table, size=new_grid, mode="bicubic", antialias=True)
    else:
        table = F.interpolate(table, size=new_grid, mode="trilinear")
    table = table.movedim(1, -1).reshape(1, -1, dim).to(pos_embed.dtype)
    return torch.cat([prefix, table], dim=1)


def pos_embed_for_grid(
    pos_embed: Tensor, built_grid: tuple[int, ...], grid: tuple[int, ...], num_prefix_tokens: int
) -> Tensor:
    """The position table for an input whose patch grid may differ from the built one.

    If the stored table is still the fixed sin-cos table, the sin-cos table of the new grid
    is computed exactly; a table that differs from it (imported from a checkpoint with learned
    embeddings, or trained) is interpolated instead. Deciding from the values, rather than a
    flag, keeps the choice right after ``load_state_dict`` without extra checkpoint entries.

    Args:
        pos_embed: [1, prefix + prod(built_grid), D].
        built_grid: the patch grid the encoder was built for.
        grid: the patch grid of the input.
        num_prefix_tokens: leading rows without a grid position (class token).

    Returns:
        [1, prefix + prod(grid), D].
    """
    if tuple(grid) == tuple(built_grid):
        return pos_embed
    dim = pos_embed.shape[-1]
    reference = sincos_pos_embed(dim, built_grid).to(pos_embed.device, pos_embed.dtype)
    table = pos_embed[:, num_prefix_tokens:]
    # on the meta device (FLOP counting) there are no values to compare; both ways give the
    # same shape, and neither costs FLOPs that count
    if pos_embed.is_meta or torch.allclose(table, reference, atol=1e-4):
        fresh = sincos_pos_embed(dim, grid).to(pos_embed.device, pos_embed.dtype)
        return torch.cat([pos_embed[:, :num_prefix_tokens], fresh], dim=1)
    return interpolate_pos_embed(pos_embed, built_grid, grid, num_prefix_tokens)
