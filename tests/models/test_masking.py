import pytest
import torch

from avpretrain.models.masking import random_masking, structured_audio_masking


def _check_triple(ids_keep, mask, ids_restore, batch, n, k):
    assert ids_keep.shape == (batch, k) and mask.shape == (batch, n)
    assert ids_restore.shape == (batch, n)
    assert torch.all(mask.sum(1) == n - k)
    # Kept patches are exactly the unmasked ones.
    assert torch.all(torch.gather(mask, 1, ids_keep) == 0)
    # ids_restore inverts the shuffle whose first K entries are ids_keep.
    ids_shuffle = torch.argsort(ids_restore, dim=1)
    assert torch.equal(ids_shuffle[:, :k], ids_keep)
    assert torch.equal(torch.gather(ids_shuffle, 1, ids_restore), torch.arange(n).expand(batch, n))
    # The decoder's unshuffle of [kept, masked] puts mask=0 tokens exactly where mask is 0.
    seq = torch.cat([torch.zeros(batch, k), torch.ones(batch, n - k)], dim=1)
    assert torch.equal(torch.gather(seq, 1, ids_restore), mask)


@pytest.mark.parametrize(
    "n,ratio,k", [(196, 0.75, 49), (512, 0.8, 102), (8, 0.5, 4), (10, 0.0, 10)]
)
def test_random_masking_counts_and_inverse(n, ratio, k):
    g = torch.Generator().manual_seed(0)
    ids_keep, mask, ids_restore = random_masking(3, n, ratio, generator=g)
    assert k == int(n * (1 - ratio))
    _check_triple(ids_keep, mask, ids_restore, 3, n, k)
    assert mask.dtype == torch.float32


def test_random_masking_is_reproducible_and_per_sample():
    a = random_masking(4, 64, 0.75, generator=torch.Generator().manual_seed(1))
    b = random_masking(4, 64, 0.75, generator=torch.Generator().manual_seed(1))
    c = random_masking(4, 64, 0.75, generator=torch.Generator().manual_seed(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[1], c[1])
    assert not torch.equal(a[1][0], a[1][1])  # different samples, different masks


def test_ratio_is_validated():
    with pytest.raises(ValueError, match="mask ratio"):
        random_masking(1, 8, 1.0)
    with pytest.raises(ValueError, match="mode"):
        structured_audio_masking(1, (2, 4), 0.5, "diagonal")


@pytest.mark.parametrize(
    "mode,full_cols,full_rows",
    [("time", 51, 0), ("frequency", 0, 6), ("time_frequency", 35, 4)],
)
def test_structured_masks_whole_lines(mode, full_cols, full_rows):
    rows, cols, ratio, batch = 8, 64, 0.8, 4
    g = torch.Generator().manual_seed(0)
    ids_keep, mask, ids_restore = structured_audio_masking(batch, (rows, cols), ratio, mode, g)
    k = int(rows * cols * (1 - ratio))
    _check_triple(ids_keep, mask, ids_restore, batch, rows * cols, k)
    grid = mask.reshape(batch, rows, cols)
    # time_frequency: per-axis ratio 1 - sqrt(0.2) = 0.553 -> int(64 * .553) = 35, int(8 * .553) = 4
    assert torch.all((grid.min(dim=1).values == 1).sum(1) >= full_cols)
    assert torch.all((grid.min(dim=2).values == 1).sum(1) >= full_rows)


def test_structured_random_mode_equals_random_masking():
    a = structured_audio_masking(2, (4, 8), 0.75, "random", torch.Generator().manual_seed(3))
    b = random_masking(2, 32, 0.75, torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
