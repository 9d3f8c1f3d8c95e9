import math

import pytest
import torch
from timm.layers import resample_abs_pos_embed

from avpretrain.models.pos_embed import (
    interpolate_pos_embed,
    pos_embed_for_grid,
    sincos_2d,
    sincos_3d,
    sincos_pos_embed,
)


def _hand_1d(dim: int, pos: float) -> list[float]:
    # MAE's formula: omega_i = 1 / 10000^(2i / dim), sin block then cos block.
    omegas = [1.0 / 10000 ** (2 * i / dim) for i in range(dim // 2)]
    return [math.sin(pos * w) for w in omegas] + [math.cos(pos * w) for w in omegas]


@pytest.mark.parametrize("row,col", [(0, 0), (1, 2), (0, 1)])
def test_sincos_2d_matches_hand_formula(row, col):
    dim, grid = 8, (2, 3)
    table = sincos_2d(dim, grid)
    assert table.shape == (6, dim)
    expected = _hand_1d(dim // 2, col) + _hand_1d(dim // 2, row)  # column half first (MAE)
    torch.testing.assert_close(
        table[row * grid[1] + col], torch.tensor(expected), atol=1e-6, rtol=0
    )


def test_sincos_pos_embed_prefix_rows_are_zero():
    table = sincos_pos_embed(16, (2, 4), num_prefix_tokens=1)
    assert table.shape == (1, 9, 16)
    assert torch.all(table[0, 0] == 0)
    torch.testing.assert_close(table[0, 1:], sincos_2d(16, (2, 4)))


def test_sincos_3d_layout_and_uniqueness():
    dim, grid = 32, (3, 2, 4)
    table = sincos_3d(dim, grid).reshape(*grid, dim)
    spatial = sincos_2d(dim - dim // 4, grid[1:]).reshape(*grid[1:], -1)
    for t in range(grid[0]):
        expected_t = torch.tensor(_hand_1d(dim // 4, t), dtype=torch.float32)
        torch.testing.assert_close(table[t, 1, 3, : dim // 4], expected_t, atol=1e-6, rtol=0)
        torch.testing.assert_close(table[t, :, :, dim // 4 :], spatial)
    flat = table.reshape(-1, dim)
    assert torch.cdist(flat, flat).add(torch.eye(len(flat)) * 10).min() > 1e-3


def test_sincos_rejects_bad_width():
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d(6, (2, 2))
    with pytest.raises(ValueError, match="divisible by 16"):
        sincos_3d(24, (2, 2, 2))


def test_interpolation_matches_timm():
    torch.manual_seed(0)
    table = torch.randn(1, 1 + 4 * 6, 16)
    ours = interpolate_pos_embed(table, (4, 6), (3, 8), num_prefix_tokens=1)
    ref = resample_abs_pos_embed(table, [3, 8], [4, 6], num_prefix_tokens=1)
    torch.testing.assert_close(ours, ref)


def test_pos_embed_for_grid_recomputes_sincos_and_interpolates_others():
    built, new = (2, 4), (2, 8)
    table = sincos_pos_embed(32, built, num_prefix_tokens=1)
    torch.testing.assert_close(
        pos_embed_for_grid(table, built, new, 1), sincos_pos_embed(32, new, 1), atol=0, rtol=0
    )
    learned = table + 0.1 * torch.randn_like(table)
    torch.testing.assert_close(
        pos_embed_for_grid(learned, built, new, 1), interpolate_pos_embed(learned, built, new, 1)
    )
    assert pos_embed_for_grid(learned, built, built, 1) is learned
