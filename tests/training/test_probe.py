import torch

from avpretrain.probe import linear_probe


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
