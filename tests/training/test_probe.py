import pytest
import torch

from avpretrain.probe import linear_probe, multilabel_probe_map


def _blobs(n_per_class: int, num_classes: int, dim: int, spread: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(99)) * 3
    y = torch.arange(num_classes).repeat_interleave(n_per_class)
    x = centres[y] + spread * torch.randn(len(y), dim, generator=g)
    return x, y


def test_probe_separates_separable_classes():
    xtr, ytr = _blobs(20, 4, 8, 0.3, seed=0)
    xte, yte = _blobs(10, 4, 8, 0.3, seed=1)
    assert linear_probe(xtr, ytr, xte, yte, num_classes=4) == 1.0


def test_probe_on_noise_is_near_chance():
    g = torch.Generator().manual_seed(0)
    xtr, xte = torch.randn(200, 16, generator=g), torch.randn(400, 16, generator=g)
    ytr, yte = torch.randint(0, 4, (200,), generator=g), torch.randint(0, 4, (400,), generator=g)
    acc = linear_probe(xtr, ytr, xte, yte, num_classes=4)
    assert 0.1 < acc < 0.4  # chance is 0.25


def test_multilabel_probe_map_reads_what_the_features_hold():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(300, 4, generator=g) < 0.3).float()
    y[:, 3] = 0.0  # a class absent everywhere: left out of the mean, not a NaN
    x = y[:, :3] * 2 + 0.1 * torch.randn(300, 3, generator=g)
    assert multilabel_probe_map(x[:200], y[:200], x[200:], y[200:]) == pytest.approx(1.0)
    noise = torch.randn(300, 3, generator=g)
    score = multilabel_probe_map(noise[:200], y[:200], noise[200:], y[200:])
    prevalence = float(y[200:, :3].mean())
    assert abs(score - prevalence) < 0.15  # chance: the mean prevalence of the kept classes
