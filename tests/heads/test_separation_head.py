"""Audio U-Net and the visually conditioned separation head."""

from __future__ import annotations

import pytest
import torch

from avpretrain.heads.separation import SeparationHead
from avpretrain.heads.unet import AudioUNet


@pytest.mark.parametrize(("height", "width"), [(37, 23), (16, 16), (5, 3), (256, 65)])
def test_unet_keeps_odd_sizes(height, width):
    unet = AudioUNet(channels=(4, 8, 8), out_channels=3)
    out = unet(torch.randn(2, 1, height, width))
    assert out.shape == (2, 3, height, width)


def test_unet_condition_sees_every_decoder_level_with_its_width():
    unet = AudioUNet(channels=(4, 8, 16), out_channels=2)
    seen = []

    def record(level, x):
        seen.append((level, x.shape[1], x.shape[-2:]))
        return x

    unet(torch.randn(1, 1, 32, 16), record)
    # bottleneck (level 2) alone, then skip + upsampled output of the level below
    assert seen == [(2, 16, (4, 2)), (1, 16, (8, 4)), (0, 8, (16, 8))]


def test_unet_channels_last_is_the_same_network_in_another_layout():
    torch.manual_seed(0)
    nhwc, nchw = AudioUNet((4, 8, 8), 3), AudioUNet((4, 8, 8), 3, channels_last=False)
    nchw.load_state_dict(nhwc.state_dict())
    conv = nhwc.downs[1][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    x = torch.randn(2, 1, 32, 24)  # a multiple of 2 ** depth: no padding to crop
    outs = [net(x) for net in (nhwc, nchw)]
    assert outs[0].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(outs[0], outs[1])
    for out in outs:
        out.square().mean().backward()
    torch.testing.assert_close(nhwc.downs[1][0].weight.grad, nchw.downs[1][0].weight.grad)


def test_sop_unet_shape_and_depth():
    unet = AudioUNet(out_channels=32)  # SoP's unet7
    assert unet.depth == 7 and unet.channels[-1] == 512
    assert unet(torch.randn(1, 1, 256, 128)).shape == (1, 32, 256, 128)


@pytest.mark.parametrize("conditioning", ["product", "film"])
@pytest.mark.parametrize("attention_layers", [0, 1])
def test_visual_embedding_selects_the_mask(conditioning, attention_layers):
    torch.manual_seed(0)
    head = SeparationHead(
        channels=(8, 16, 16),
        feature_channels=4,
        conditioning=conditioning,
        attention_layers=attention_layers,
        visual_dim=12,
    ).eval()
    log_mag, tokens = torch.randn(2, 1, 33, 21), torch.randn(2, 5, 12)
    a = head(log_mag, torch.randn(2, 12), tokens)
    b = head(log_mag, torch.randn(2, 12), tokens)
    assert a.shape == (2, 1, 33, 21)
    assert (a - b).abs().max() > 1e-4


def test_product_is_sops_linear_synthesizer():
    torch.manual_seed(0)
    head = SeparationHead(channels=(4, 8), feature_channels=3, visual_norm=False, visual_dim=6)
    head.eval()
    log_mag, visual = torch.randn(1, 1, 8, 8), torch.randn(1, 6)
    maps = head.unet(log_mag)  # [1, 3, 8, 8]
    weights = torch.sigmoid(visual @ head.visual_proj.weight.T + head.visual_proj.bias)
    expected = (weights[0, :, None, None] * head.scale[:, None, None] * maps[0]).sum(0)
    torch.testing.assert_close(head(log_mag, visual)[0, 0], expected + head.bias)


def _small_head(conditioning, attention_layers, audio_dim=None):
    """A 2-level head on 12-wide visual features, seeded, in eval mode."""
    torch.manual_seed(0)
    return SeparationHead(
        channels=(8, 16),
        feature_channels=4,
        conditioning=conditioning,
        attention_layers=attention_layers,
        visual_dim=12,
        audio_dim=audio_dim,
    ).eval()


@pytest.mark.parametrize(("conditioning", "attention_layers"), [("product", 0), ("film", 1)])
def test_several_sources_equal_one_call_per_source(conditioning, attention_layers):
    head = _small_head(conditioning, attention_layers)
    log_mag, visual, tokens = (
        torch.randn(2, 1, 12, 9),
        torch.randn(2, 3, 12),
        torch.randn(2, 3, 4, 12),
    )
    both = head(log_mag, visual, tokens)
    assert both.shape == (2, 3, 12, 9)
    for j in range(3):
        torch.testing.assert_close(both[:, j : j + 1], head(log_mag, visual[:, j], tokens[:, j]))


def test_visual_norm_standardises_embeddings_over_the_batch():
    torch.manual_seed(0)
    head = SeparationHead(channels=(4,), feature_channels=2, visual_dim=6)  # training mode
    visual = 5 + 0.01 * torch.randn(4, 2, 6)  # close embeddings, as from a frozen encoder
    seen = []
    head.visual_proj.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    head(torch.randn(4, 1, 8, 8), visual)
    flat = visual.reshape(8, 6)
    ref = (flat - flat.mean(0)) / torch.sqrt(flat.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(seen[0].reshape(8, 6), ref, atol=1e-4, rtol=1e-4)


def test_bind_and_bad_arguments():
    head = SeparationHead(channels=(4,), feature_channels=2)
    with pytest.raises(RuntimeError, match="bind"):
        head(torch.randn(1, 1, 4, 4), torch.randn(1, 6))
    head.bind(6)
    head.bind(6)  # binding again with the same width is a no-op
    with pytest.raises(ValueError, match="widths"):
        head.bind(8)
    with pytest.raises(ValueError, match="conditioning"):
        SeparationHead(conditioning="concat")
    attn = SeparationHead(channels=(4, 8), attention_layers=1, visual_dim=6)
    with pytest.raises(ValueError, match="visual_tokens"):
        attn(torch.randn(1, 1, 8, 8), torch.randn(1, 6))


def test_max_pool_is_sops_spatial_max_of_projected_tokens():
    head = SeparationHead(
        channels=(4, 8), feature_channels=3, visual_pool="max", visual_norm=False, visual_dim=6
    )
    tokens = torch.randn(2, 2, 5, 6)
    w, b = head.visual_proj.weight, head.visual_proj.bias
    ref = torch.stack(
        [
            torch.stack(
                [torch.sigmoid((tokens[i, s] @ w.T + b).max(dim=0).values) for s in range(2)]
            )
            for i in range(2)
        ]
    )
    torch.testing.assert_close(head.channel_weights(None, tokens), ref * head.scale)
    head.eval()
    log_mag = torch.randn(2, 1, 16, 8)
    out = head(log_mag, tokens.mean(2), tokens)
    shuffled = head(log_mag, tokens.mean(2), tokens[:, :, torch.randperm(5)])
    torch.testing.assert_close(out, shuffled)  # where an object is does not matter
    # one patch changes the mask though the mean embedding the head is given does not
    louder = tokens.clone()
    louder[:, :, 0] += 10 * w.sum(0).sign()
    assert (head(log_mag, tokens.mean(2), louder) - out).abs().max() > 1e-3
    with pytest.raises(ValueError, match="visual_tokens"):
        head(log_mag, tokens.mean(2))
    with pytest.raises(ValueError, match="product"):
        SeparationHead(channels=(4, 8), conditioning="film", visual_pool="max")


def test_audio_grid_is_projected_resized_and_added_at_every_decoder_level():
    torch.manual_seed(0)
    head = SeparationHead(channels=(4, 8, 8), feature_channels=3, visual_dim=6, audio_dim=5)
    head.eval()
    grid = torch.randn(2, 5, 3, 7)  # [B, audio_dim, mel rows, time columns]
    seen = []
    for level, up in enumerate(head.unet.ups):
        up.register_forward_pre_hook(lambda m, args, level=level: seen.append((level, args[0])))
    plain = []
    add = head.audio_condition(grid)

    def record_then_add(level, x):
        plain.append((level, x))
        return add(level, x)

    # what reaches each decoder level is its input plus the projected grid, resized to its map
    head.unet(torch.randn(2, 1, 16, 12), record_then_add)
    for (level, before), (_, after) in zip(plain, seen, strict=True):
        proj = head.audio_proj[level]
        ref = torch.nn.functional.interpolate(
            torch.einsum("oi,bihw->bohw", proj.weight[:, :, 0, 0], grid)
            + proj.bias[None, :, None, None],
            size=before.shape[-2:],
            mode="bilinear",
        )
        torch.testing.assert_close(after - before, ref, atol=1e-5, rtol=1e-5)
    assert [level for level, _ in seen] == [2, 1, 0]


@pytest.mark.parametrize(("conditioning", "attention_layers"), [("product", 0), ("film", 1)])
def test_mixture_audio_grid_changes_the_masks_and_is_required(conditioning, attention_layers):
    head = _small_head(conditioning, attention_layers, audio_dim=5)
    log_mag, visual = torch.randn(2, 1, 12, 9), torch.randn(2, 2, 12)
    tokens = torch.randn(2, 2, 4, 12)
    grid = torch.randn(2, 5, 4, 6)
    both = head(log_mag, visual, tokens, grid)
    for j in range(2):  # the grid is the mixture's: the same for every source
        torch.testing.assert_close(
            both[:, j : j + 1], head(log_mag, visual[:, j], tokens[:, j], grid)
        )
    assert (both - head(log_mag, visual, tokens, torch.randn(2, 5, 4, 6))).abs().max() > 1e-4
    with pytest.raises(ValueError, match="audio_grid"):
        head(log_mag, visual, tokens)
    with pytest.raises(ValueError, match="audio_grid"):
        SeparationHead(channels=(4,), visual_dim=12)(log_mag, visual[:, 0], None, grid)
    with pytest.raises(ValueError, match="widths"):
        head.bind(12, 7)
