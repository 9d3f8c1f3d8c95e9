import pytest
import torch

from avpretrain.models.audio_views import shifted_view


def _tones(b: int = 6, f: int = 32, t: int = 20) -> torch.Tensor:
    """[B, 1, F, T] spectrograms at -10 (silence) with one lit bin per sample and time column:
    bin ``4 + i`` at every frame, brightness rising with the frame index (so rolls show)."""
    x = torch.full((b, 1, f, t), -10.0)
    for i in range(b):
        x[i, 0, 4 + i] = torch.arange(t, dtype=torch.float32)
    return x


def test_view_is_a_bounded_mel_shift_and_a_time_roll_of_each_sample():
    x = _tones()
    b, _, f, t = x.shape
    view = shifted_view(x, max_shift=3, generator=torch.Generator().manual_seed(0))
    assert view.shape == x.shape and view.dtype == x.dtype
    shifts = set()
    for i in range(b):
        lit = (view[i, 0] > -10).any(dim=1).nonzero().flatten().tolist()
        # the ramp (0 .. T-1) lies above the silence (-10) at every frame: one lit bin per sample
        assert len(lit) == 1, lit
        shift = lit[0] - (4 + i)
        assert -3 <= shift <= 3
        shifts.add(shift)
        # the lit row is the ramp rolled by some offset r: value at frame j is (j - r) mod T
        row = view[i, 0, lit[0]]
        r = int((-row[0]).remainder(t).item())
        torch.testing.assert_close(row, torch.roll(torch.arange(t, dtype=torch.float32), r))
        # every other bin holds the sample's silence
        others = torch.cat([view[i, 0, : lit[0]], view[i, 0, lit[0] + 1 :]])
        assert torch.all(others == -10.0)
    assert len(shifts) > 1  # samples draw their own shifts


def test_bins_shifted_in_take_the_samples_minimum():
    x = torch.arange(8.0).repeat_interleave(5).reshape(1, 1, 8, 5)  # bin k holds k, minimum 0
    signs = set()
    for seed in range(20):
        column = shifted_view(x, 7, torch.Generator().manual_seed(seed))[0, 0, :, 0]
        # bin k reads bin k - s; read s off the ends: a downward shift lifts bin 0 to |s|
        s = -int(column[0]) if column[0] > 0 else 7 - int(column[7])
        want = torch.tensor([float(k - s) if 0 <= k - s < 8 else 0.0 for k in range(8)])
        torch.testing.assert_close(column, want)
        signs.add((s > 0) - (s < 0))
    assert signs >= {-1, 1}


def test_same_generator_seed_same_view_and_zero_shift_only_rolls():
    x = torch.randn(4, 1, 16, 12)
    a = shifted_view(x, 5, torch.Generator().manual_seed(3))
    b = shifted_view(x, 5, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    rolled = shifted_view(x, 0, torch.Generator().manual_seed(1))
    for i in range(4):
        assert any(torch.equal(rolled[i], torch.roll(x[i], r, dims=-1)) for r in range(12))


@pytest.mark.parametrize("shift", [-1, 16])
def test_refuses_a_shift_outside_the_mel_axis(shift):
    with pytest.raises(ValueError, match="max_shift"):
        shifted_view(torch.zeros(1, 1, 16, 4), shift)
