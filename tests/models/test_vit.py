import pytest
import torch
from timm.models.vision_transformer import Block as TimmBlock
from timm.models.vision_transformer import VisionTransformer

from avpretrain.models.patch_embed import patchify, unpatchify
from avpretrain.models.vit import Block, ViTConfig, ViTEncoder


def _tiny(img_size, in_chans=3, **kwargs) -> ViTEncoder:
    return ViTEncoder(img_size, (16, 16), in_chans, ViTConfig.preset("tiny"), **kwargs).eval()


def test_block_matches_timm_by_parameter_name():
    torch.manual_seed(0)
    ours = Block(64, 4, 4.0).eval()
    ref = TimmBlock(64, 4, 4.0, qkv_bias=True).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 5, 64)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("img_size,in_chans", [((32, 32), 3), ((32, 64), 1)])
def test_encoder_matches_timm_vit(img_size, in_chans):
    torch.manual_seed(0)
    ours = _tiny(img_size, in_chans)
    ref = VisionTransformer(
        img_size=img_size, patch_size=16, in_chans=in_chans, num_classes=0,
        embed_dim=64, depth=2, num_heads=4,
    ).eval()  # fmt: skip
    ref.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, in_chans, *img_size)
    torch.testing.assert_close(
        ours.forward_features(x), ref.forward_features(x), atol=1e-5, rtol=1e-5
    )


def test_vit_base_parameter_count():
    encoder = ViTEncoder((224, 224), (16, 16), 3, "base")
    count = sum(p.numel() for p in encoder.parameters())
    assert abs(count - 85.8e6) / 85.8e6 < 0.01
    assert count == 85_798_656  # timm's vit_base_patch16_224 without its 1000-class head


def test_audio_grid_and_shapes():
    audio = ViTEncoder((128, 1024), (16, 16), 1, "tiny")
    assert audio.grid_size == (8, 64) and audio.num_patches == 512
    small = _tiny((32, 64), in_chans=1)
    x = torch.randn(2, 1, 32, 64)
    assert small.grid_size == (2, 4)
    assert small(x).shape == (2, 1 + 8, 64)
    assert small.patchify(x).shape == (2, 8, 256)
    assert small.forward_embedding(x).shape == (2, 64)


def test_video_tubelet_shapes():
    enc = _tiny((32, 32), num_frames=4, tubelet=2)
    x = torch.randn(2, 3, 4, 32, 32)
    assert enc.grid_size == (2, 2, 2) and enc.num_patches == 8
    assert enc(x).shape == (2, 9, 64)
    assert enc.patchify(x).shape == (2, 8, 2 * 16 * 16 * 3) and enc.patch_dim == 1536
    torch.testing.assert_close(enc.unpatchify(enc.patchify(x)), x)


@pytest.mark.parametrize("clip", [False, True])
def test_patchify_order_matches_conv_patch_order(clip):
    # The conv applied to patch i equals a Linear on patchify(x)[:, i] with the weight laid out
    # (tubelet, row, col, channel): proves targets and tokens share order and pixel layout.
    torch.manual_seed(0)
    if clip:
        enc, x = _tiny((32, 48), num_frames=4, tubelet=2), torch.randn(1, 3, 4, 32, 48)
        weight = enc.patch_embed.proj.weight.permute(0, 2, 3, 4, 1).flatten(1)
    else:
        enc, x = _tiny((32, 48)), torch.randn(1, 3, 32, 48)
        weight = enc.patch_embed.proj.weight.permute(0, 2, 3, 1).flatten(1)
    tokens = enc.patch_embed(x)
    linear = enc.patchify(x) @ weight.T + enc.patch_embed.proj.bias
    torch.testing.assert_close(tokens, linear, atol=1e-5, rtol=1e-5)


def test_unpatchify_inverts_patchify_and_audio_rows_are_frequency():
    x = torch.arange(32 * 64, dtype=torch.float32).reshape(1, 1, 32, 64)
    patches = patchify(x, (16, 16))
    # Patch 1 is frequency row 0, time column 1 (row-major over (F/16, T/16)).
    torch.testing.assert_close(patches[0, 1], x[0, 0, :16, 16:32].reshape(-1))
    torch.testing.assert_close(unpatchify(patches, (2, 4), (16, 16)), x)


def test_other_input_size_interpolates_positions():
    torch.manual_seed(0)
    enc = _tiny((224, 224))
    x = torch.randn(1, 3, 160, 160)
    out = enc(x)
    assert out.shape == (1, 1 + 100, 64)
    # Sin-cos is recomputed exactly, so the result equals an encoder built for 160.
    built_160 = _tiny((160, 160))
    built_160.load_state_dict(
        {k: v for k, v in enc.state_dict().items() if k != "pos_embed"}, strict=False
    )
    torch.testing.assert_close(out, built_160(x), atol=1e-5, rtol=1e-5)


def test_ids_keep_selects_tokens():
    torch.manual_seed(0)
    enc = _tiny((32, 64), in_chans=1)
    x = torch.randn(2, 1, 32, 64)
    full = enc.forward_features(x)
    identity = torch.arange(8).expand(2, 8)
    torch.testing.assert_close(enc.forward_features(x, identity), full)
    # Without masking, attention is permutation-equivariant: permuted ids permute the tokens.
    perm = torch.stack([torch.randperm(8), torch.randperm(8)])
    out = enc.forward_features(x, perm)
    expected = torch.gather(full[:, 1:], 1, perm[..., None].expand(-1, -1, 64))
    torch.testing.assert_close(out[:, 1:], expected, atol=1e-5, rtol=1e-5)
    assert enc.forward_features(x, perm[:, :3]).shape == (2, 4, 64)


def test_single_frame_encoder_takes_one_frame_clips_and_rejects_bad_sizes():
    enc = _tiny((32, 32))
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(enc(x[:, :, None]), enc(x))
    with pytest.raises(ValueError, match="not divisible"):
        enc(torch.randn(1, 3, 30, 32))


def test_no_cls_token_and_frozen_pos_embed():
    enc = _tiny((32, 32), cls_token=False)
    assert enc.num_prefix_tokens == 0 and enc.cls_token is None
    assert enc(torch.randn(1, 3, 32, 32)).shape == (1, 4, 64)
    assert not enc.pos_embed.requires_grad and "pos_embed" in enc.state_dict()


def test_presets():
    assert ViTConfig.preset("base") == ViTConfig(768, 12, 12)
    assert ViTConfig.preset("base_decoder") == ViTConfig(512, 8, 16)
    with pytest.raises(ValueError, match="unknown ViT preset"):
        ViTConfig.preset("huge")
