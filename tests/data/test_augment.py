import math

import pytest
import torch
import torchaudio.transforms as T

from avpretrain.data.loading.augment import mixup, random_gain, random_time_roll, spec_augment


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def bands(masked: torch.Tensor) -> tuple[list[int], list[int]]:
    """Fully masked rows and columns of a [F, T] boolean mask."""
    rows = masked.all(dim=1).nonzero().flatten().tolist()
    cols = masked.all(dim=0).nonzero().flatten().tolist()
    return rows, cols


def contiguous(idx: list[int]) -> bool:
    return idx == list(range(idx[0], idx[0] + len(idx))) if idx else True


@pytest.mark.parametrize("seed", range(5))
def test_spec_augment_masks_contiguous_bands_within_limits(seed: int) -> None:
    spec = torch.ones(6, 1, 32, 64)
    out = spec_augment(spec, freq_mask=10, time_mask=20, mask_value=-1.0, generator=gen(seed))
    assert set(out.unique().tolist()) <= {-1.0, 1.0}
    for b in range(6):
        masked = out[b, 0] == -1.0
        rows, cols = bands(masked)
        assert contiguous(rows) and len(rows) < 10
        assert contiguous(cols) and len(cols) < 20
        # Nothing is masked outside the two bands.
        expected = torch.zeros(32, 64, dtype=torch.bool)
        expected[rows, :] = True
        expected[:, cols] = True
        assert torch.equal(masked, expected)


def test_spec_augment_follows_torchaudio_draws() -> None:
    spec = torch.randn(4, 1, 32, 64, generator=gen(0))
    torch.manual_seed(3)
    ref = T.FrequencyMasking(12, iid_masks=True)(spec, 0.5)
    ref = T.TimeMasking(25, iid_masks=True)(ref, 0.5)
    torch.manual_seed(3)
    out = spec_augment(spec, 12, 25, mask_value=0.5)
    assert torch.equal(out, ref) and not torch.equal(out, spec)
    single = spec[0]  # [1, F, T]: the non-iid transforms as CAV-MAE calls them
    torch.manual_seed(4)
    ref = T.TimeMasking(25)(T.FrequencyMasking(12)(single))
    torch.manual_seed(4)
    assert torch.equal(spec_augment(single, 12, 25), ref)


def test_spec_augment_is_seedable_and_iid() -> None:
    spec = torch.ones(8, 1, 32, 64)
    a = spec_augment(spec, generator=gen(7))
    assert torch.equal(a, spec_augment(spec, generator=gen(7)))
    assert len({tuple(bands(a[b, 0] == 0)[1]) for b in range(8)}) > 1


def test_mixup_with_fixed_lambda_matches_formula() -> None:
    audio = torch.arange(1.0, 5.0)[:, None].expand(4, 10)
    video = 10 * torch.arange(1.0, 5.0)[:, None, None, None].expand(4, 3, 2, 2)
    labels = torch.eye(4)
    a, v, y, lam = mixup(audio, video, labels, generator=gen(0), lam=0.3)
    assert lam == 0.3
    perm = y.argmax(dim=1)  # the partner holds weight 0.7 > 0.3
    assert sorted(perm.tolist()) == [0, 1, 2, 3]
    expected_y = 0.3 * labels + 0.7 * labels[perm]
    torch.testing.assert_close(y, expected_y)
    torch.testing.assert_close(a, 0.3 * audio + 0.7 * audio[perm])
    torch.testing.assert_close(v, 0.3 * video + 0.7 * video[perm])


def test_mixup_draws_lambda_reproducibly() -> None:
    audio = torch.randn(5, 16, generator=gen(1))
    labels = torch.eye(5)
    a1, v1, y1, lam1 = mixup(audio, None, labels, alpha=10.0, generator=gen(2))
    a2, _, y2, lam2 = mixup(audio, None, labels, alpha=10.0, generator=gen(2))
    assert v1 is None and lam1 == lam2 and 0.0 < lam1 < 1.0
    assert torch.equal(a1, a2) and torch.equal(y1, y2)
    torch.testing.assert_close(y1.sum(dim=1), torch.ones(5))  # mixed labels keep unit mass
    lams = [mixup(audio, None, labels, alpha=1e4, generator=gen(s))[3] for s in range(5)]
    assert all(abs(x - 0.5) < 0.02 for x in lams)  # Beta(a, a) concentrates at 1/2
    same = mixup(audio, None, labels, alpha=0.0, generator=gen(3))
    assert same[3] == 1.0 and torch.equal(same[0], audio)


def test_random_gain_changes_rms_by_drawn_db() -> None:
    wave = torch.randn(3, 1000, generator=gen(0))
    rms = lambda x: x.pow(2).mean(dim=-1).sqrt()  # noqa: E731
    out = random_gain(wave, -6.0, 6.0, generator=gen(5))
    db = -6.0 + 12.0 * torch.rand(3, 1, generator=gen(5))  # the same draw, by hand
    torch.testing.assert_close(20 * torch.log10(rms(out) / rms(wave)), db[:, 0])
    fixed = random_gain(wave[0], 3.0, 3.0)
    assert math.isclose(20 * math.log10(rms(fixed) / rms(wave[0])), 3.0, abs_tol=1e-4)
    with pytest.raises(ValueError):
        random_gain(wave, 6.0, -6.0)


def test_random_time_roll_is_a_circular_shift() -> None:
    wave = torch.arange(50.0)
    out = random_time_roll(wave, generator=gen(0))
    assert torch.equal(out.sort().values, wave)  # same multiset of samples
    assert any(torch.equal(out, wave.roll(s)) for s in range(50))
    batch = torch.arange(150.0).reshape(3, 50)
    rolled = random_time_roll(batch, generator=gen(1))
    shifts = [
        next(s for s in range(50) if torch.equal(rolled[i], batch[i].roll(s))) for i in range(3)
    ]
    assert len(set(shifts)) > 1  # one offset per row
    assert torch.equal(rolled, random_time_roll(batch, generator=gen(1)))
