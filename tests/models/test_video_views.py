"""The within-video views: colour permutation / gain / grey, and the resized crop with flip."""

import pytest
import torch

from avpretrain.models.video_views import augmented_view, colour_view, crop_view


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_colour_view_permutes_and_scales_channels() -> None:
    """Each output channel is one input channel times a gain in [0.6, 1.4], all channels used."""
    video = torch.rand(16, 3, 8, 8) + 0.5  # positive, so ratios are defined
    out = colour_view(video, grey_prob=0.0, generator=_seeded())
    for b in range(16):
        used = []
        for c in range(3):
            ratios = out[b, c] / video[b]  # [3, 8, 8]: the ratio to each input channel
            constant = (ratios.amax(dim=(1, 2)) - ratios.amin(dim=(1, 2))) < 1e-5
            assert constant.sum() == 1, "an output channel must be one scaled input channel"
            source = int(constant.nonzero())
            gain = float(ratios[source].mean())
            assert 0.6 <= gain <= 1.4
            used.append(source)
        assert sorted(used) == [0, 1, 2]


def test_colour_view_grey_and_clip_frames() -> None:
    """grey_prob 1 gives equal channels; a clip's frames all get the same colour change."""
    clip = torch.rand(4, 3, 1, 6, 6).expand(4, 3, 5, 6, 6).contiguous()  # 5 equal frames
    grey = colour_view(clip, grey_prob=1.0, generator=_seeded())
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    out = colour_view(clip, grey_prob=0.0, generator=_seeded())
    assert torch.allclose(out, out[:, :, :1].expand_as(out))
    assert not torch.allclose(out, clip)


def test_crop_view_full_scale_is_identity_or_flip() -> None:
    """min_scale 1 leaves only the flip: every sample is the input or its mirror, both occur."""
    video = torch.rand(32, 3, 16, 16)
    out = crop_view(video, min_scale=1.0, generator=_seeded())
    same = (out - video).abs().amax(dim=(1, 2, 3)) < 1e-5
    mirrored = (out - video.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert bool((same | mirrored).all())
    assert 0 < int(same.sum()) < 32


def test_crop_view_zooms_inside_the_frame() -> None:
    """On a horizontal ramp the crop is a ramp of slope +-side, side in [sqrt(min_scale), 1],
    with values inside the input's range (the crop never leaves the frame)."""
    width, min_scale = 64, 0.25
    ramp = torch.arange(width, dtype=torch.float32).expand(8, 3, width, width).contiguous()
    out = crop_view(ramp, min_scale=min_scale, generator=_seeded(3))
    row = out[:, 0, 10, 1:-1]  # interior columns, away from the bilinear edge
    slope = row.diff(dim=1)
    assert torch.allclose(slope, slope[:, :1].expand_as(slope), atol=1e-3)  # a linear ramp
    side = slope[:, 0].abs()
    assert bool(((side >= min_scale**0.5 - 1e-3) & (side <= 1 + 1e-3)).all())
    assert out.min() >= 0 and out.max() <= width - 1
    assert torch.allclose(out[:, 0], out[:, 1])  # one warp for all channels


def test_views_are_reproducible_and_check_shapes() -> None:
    video = torch.randn(4, 3, 2, 16, 16)
    first = augmented_view(video, generator=_seeded(7))
    assert first.shape == video.shape
    assert torch.equal(first, augmented_view(video, generator=_seeded(7)))
    assert not torch.equal(first, augmented_view(video, generator=_seeded(8)))
    with pytest.raises(ValueError, match="B, 3"):
        colour_view(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="min_scale"):
        crop_view(video, min_scale=0.0)
