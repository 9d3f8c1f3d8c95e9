"""Weight import: our encoders reproduce timm / MAE, AudioMAE-layout and CAV-MAE encoders."""

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import Block as TimmBlock
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from avpretrain.models.vit import ViTConfig, ViTEncoder
from avpretrain.models.weights import (
    import_audiomae,
    import_cavmae,
    import_mae,
    import_vit,
    import_weights,
    load_checkpoint,
    strip_prefixes,
)

TINY = dict(embed_dim=64, depth=2, num_heads=4)


def _timm_tiny(img_size=(32, 32), patch_size=16, in_chans=3, depth=2) -> VisionTransformer:
    model = VisionTransformer(
        img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=0,
        embed_dim=64, depth=depth, num_heads=4,
    )  # fmt: skip
    _randomize_norms(model)
    return model.eval()


def _randomize_norms(module: nn.Module) -> None:
    # Freshly built norms are all ones / zeros, which would hide swapped norm weights.
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.2)


def _mae_pretraining_checkpoint(state: dict) -> dict:
    """MAE's saved layout: ``{"model": ...}`` from a DDP module, with the decoder and args."""
    state = dict(state)
    state["mask_token"] = torch.zeros(1, 1, 32)
    state["decoder_embed.weight"] = torch.randn(32, 64)
    state["decoder_pos_embed"] = torch.randn(1, 5, 32)
    state["decoder_blocks.0.attn.qkv.weight"] = torch.randn(96, 32)
    return {"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}


def test_vit_base_mae_reproduces_timm():
    torch.manual_seed(0)
    ref = timm.create_model("vit_base_patch16_224.mae", pretrained=False).eval()
    _randomize_norms(ref)
    ours = ViTEncoder((224, 224), config="base").eval()
    report = import_mae(ours, ref.state_dict())
    assert not report.interpolated and len(report.loaded) == len(ours.state_dict())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_features(x), ref.forward_features(x), atol=1e-5, rtol=1e-5)  # fmt: skip


def test_mae_pretraining_file_with_prefixes(tmp_path):
    torch.manual_seed(0)
    ref = _timm_tiny()
    path = tmp_path / "mae_pretrain.pth"
    torch.save(_mae_pretraining_checkpoint(ref.state_dict()), path)
    ours = ViTEncoder((32, 32), config=ViTConfig(**TINY)).eval()
    report = import_mae(ours, path)
    assert "mask_token" in report.ignored and "decoder_embed.weight" in report.ignored
    assert not report.missing and not report.unexpected
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref.forward_features(x), atol=1e-5, rtol=1e-5)


def test_safetensors_and_class_token_dropped(tmp_path):
    torch.manual_seed(0)
    ref = _timm_tiny()
    path = tmp_path / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    ours = ViTEncoder((32, 32), config=ViTConfig(**TINY), cls_token=False).eval()
    report = import_vit(ours, load_checkpoint(path))
    assert any(k.startswith("cls_token") for k in report.ignored)
    torch.testing.assert_close(ours.pos_embed, ref.pos_embed[:, 1:])


def test_position_table_interpolated_as_timm():
    torch.manual_seed(0)
    ref = _timm_tiny(img_size=(224, 224), depth=1)
    ours = ViTEncoder((160, 160), config=ViTConfig(64, 1, 4)).eval()
    report = import_vit(ours, ref.state_dict())
    assert report.interpolated == {"pos_embed": "(14, 14) -> (10, 10)"}
    expected = resample_abs_pos_embed(ref.pos_embed.detach(), [10, 10], num_prefix_tokens=1)
    assert ours.pos_embed.shape == (1, 101, 64)
    torch.testing.assert_close(ours.pos_embed.detach(), expected, atol=1e-6, rtol=1e-5)


def _tf_tokens_to_ft(tokens: torch.Tensor, grid_tf: tuple[int, int]) -> torch.Tensor:
    """[B, 1 + T*F, D] in (T, F) order -> (F, T) order, class token first."""
    b, _, d = tokens.shape
    patches = tokens[:, 1:].reshape(b, *grid_tf, d).transpose(1, 2).reshape(b, -1, d)
    return torch.cat([tokens[:, :1], patches], dim=1)


@pytest.mark.parametrize("via", ["import_vit", "import_audiomae"])
def test_audiomae_time_freq_layout(via):
    torch.manual_seed(0)
    # AudioMAE-style input [B, 1, T, F] = 64 x 16, non-square patches (16 in time, 8 in freq).
    ref = _timm_tiny(img_size=(64, 16), patch_size=(16, 8), in_chans=1)
    ours = ViTEncoder((16, 64), (8, 16), 1, ViTConfig(**TINY)).eval()
    if via == "import_vit":
        import_vit(ours, ref.state_dict(), layout="time_freq", source_grid=(4, 2))
    else:
        import_audiomae(ours, {"model": ref.state_dict()}, num_mel_bins=16)
    x_ft = torch.randn(2, 1, 16, 64)
    with torch.no_grad():
        expected = _tf_tokens_to_ft(ref.forward_features(x_ft.transpose(-1, -2)), (4, 2))
        torch.testing.assert_close(ours(x_ft), expected, atol=1e-5, rtol=1e-5)


def _cavmae_state(dim=64, specific=2, mel=32, frames=64, video=48) -> dict[str, torch.Tensor]:
    """A random CAV-MAE state dict (as saved from DataParallel) and the modules it came from."""

    def block(prefix: str, extra_norms: bool) -> dict[str, torch.Tensor]:
        b = TimmBlock(dim, 4, qkv_bias=True, norm_layer=nn.LayerNorm)
        _randomize_norms(b)
        out = {f"{prefix}.{k}": v for k, v in b.state_dict().items()}
        for norm in ("norm1", "norm2") if extra_norms else ():
            for m in "av":
                out[f"{prefix}.{norm}_{m}.weight"] = torch.randn(dim) * 0.2 + 1
                out[f"{prefix}.{norm}_{m}.bias"] = torch.randn(dim) * 0.2
        return out

    state = {
        "patch_embed_a.proj.weight": torch.randn(dim, 1, 16, 16) * 0.05,
        "patch_embed_a.proj.bias": torch.randn(dim) * 0.1,
        "patch_embed_v.proj.weight": torch.randn(dim, 3, 16, 16) * 0.05,
        "patch_embed_v.proj.bias": torch.randn(dim) * 0.1,
        "pos_embed_a": torch.randn(1, (mel // 16) * (frames // 16), dim),
        "pos_embed_v": torch.randn(1, (video // 16) ** 2, dim),
        "modality_a": torch.randn(1, 1, dim),
        "modality_v": torch.randn(1, 1, dim),
        "mask_token": torch.randn(1, 1, 32),
        "decoder_embed.weight": torch.randn(32, dim),
        "decoder_modality_a": torch.randn(1, 1, 32),
    }
    for m in "av":
        for i in range(specific):
            state |= block(f"blocks_{m}.{i}", extra_norms=True)
        for part in ("weight", "bias"):
            state[f"norm_{m}.{part}"] = torch.randn(dim) * 0.2 + (part == "weight")
    state |= block("blocks_u.0", extra_norms=True)
    state |= {"norm.weight": torch.randn(dim), "norm.bias": torch.randn(dim)}
    return {f"module.{k}": v for k, v in state.items()}


def _cavmae_reference(state: dict, m: str, x: torch.Tensor, specific: int) -> torch.Tensor:
    """CAV-MAE's ``forward_feat`` for one modality, from timm Blocks (eps 1e-5 as CAV-MAE)."""
    state = strip_prefixes(state)
    dim = state[f"norm_{m}.weight"].shape[0]
    w, b = state[f"patch_embed_{m}.proj.weight"], state[f"patch_embed_{m}.proj.bias"]
    tokens = nn.functional.conv2d(x, w, b, stride=16).flatten(2).transpose(1, 2)
    tokens = tokens + state[f"pos_embed_{m}"] + state[f"modality_{m}"]
    for i in range(specific + 1):
        blk = TimmBlock(dim, 4, qkv_bias=True, norm_layer=nn.LayerNorm).eval()
        if i < specific:
            src = {k: state[f"blocks_{m}.{i}.{k}"] for k in blk.state_dict()}
        else:  # the shared layer with this modality's norms
            src = {k: state[f"blocks_u.0.{k.replace('norm1', f'norm1_{m}').replace('norm2', f'norm2_{m}')}"] for k in blk.state_dict()}  # fmt: skip
        blk.load_state_dict(src)
        tokens = blk(tokens)
    return nn.functional.layer_norm(tokens, (dim,), state[f"norm_{m}.weight"], state[f"norm_{m}.bias"], eps=1e-5)  # fmt: skip


def test_cavmae_reproduces_both_branches():
    torch.manual_seed(0)
    state = _cavmae_state()
    audio = ViTEncoder((32, 64), in_chans=1, config=ViTConfig(64, 3, 4), cls_token=False).eval()
    video = ViTEncoder((48, 48), in_chans=3, config=ViTConfig(64, 3, 4), cls_token=False).eval()
    report = import_cavmae(audio, video, state, num_mel_bins=32)
    assert not report.missing and not report.unexpected and not report.interpolated
    assert "blocks_u.0.norm1.weight" in report.ignored and "norm.weight" in report.ignored
    # CAV-MAE's LayerNorms use eps 1e-5 (ours 1e-6); the import sets it for exact outputs.
    assert {m.eps for m in audio.modules() if isinstance(m, nn.LayerNorm)} == {1e-5}
    fbank = torch.randn(2, 64, 32)  # CAV-MAE's audio input [B, T, F]
    frames = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        a_ref = _cavmae_reference(state, "a", fbank.unsqueeze(1).transpose(2, 3), 2)
        v_ref = _cavmae_reference(state, "v", frames, 2)
        torch.testing.assert_close(audio(fbank.unsqueeze(1).transpose(2, 3)), a_ref, atol=1e-5, rtol=1e-5)  # fmt: skip
        torch.testing.assert_close(video(frames), v_ref, atol=1e-5, rtol=1e-5)


def test_cavmae_needs_encoders_without_class_token():
    audio = ViTEncoder((32, 64), in_chans=1, config=ViTConfig(64, 3, 4))
    video = ViTEncoder((48, 48), config=ViTConfig(64, 3, 4), cls_token=False)
    with pytest.raises(ValueError, match="cls_token=False"):
        import_cavmae(audio, video, _cavmae_state())


def test_import_weights_dispatch(tmp_path):
    torch.manual_seed(0)
    model = nn.Module()
    model.audio_encoder = ViTEncoder((32, 64), in_chans=1, config=ViTConfig(64, 3, 4), cls_token=False)  # fmt: skip
    model.video_encoder = ViTEncoder((48, 48), config=ViTConfig(64, 3, 4), cls_token=False)
    path = tmp_path / "cavmae.pth"
    state = _cavmae_state(mel=128, frames=64)  # CAV-MAE's 128 mel bins; our encoder 32 x 64
    torch.save(state, path)
    report = import_weights(model, "cavmae", path)
    # 8 x 4 source audio grid resized to ours (2 x 4); the 3 x 3 video grid fits as it is.
    assert report.interpolated == {"audio_encoder.pos_embed": "(8, 4) -> (2, 4)"}
    with pytest.raises(ValueError, match="unknown weight kind"):
        import_weights(model, "beit", path)


def test_missing_block_is_named():
    ref = _timm_tiny()
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith("blocks.1.")}
    ours = ViTEncoder((32, 32), config=ViTConfig(**TINY))
    with pytest.raises(ValueError, match=r"missing \[blocks\.1\.norm1\.weight"):
        import_vit(ours, state)
    before = ours.blocks[1].norm1.weight.clone()
    report = import_vit(ours, state, strict=False)
    assert "blocks.1.attn.qkv.weight" in report.missing
    assert torch.equal(ours.blocks[1].norm1.weight, before)
    torch.testing.assert_close(ours.blocks[0].norm1.weight, ref.blocks[0].norm1.weight)


def test_unknown_and_mismatched_entries_are_errors():
    ref = _timm_tiny()
    state = ref.state_dict() | {"blocks.0.ls1.gamma": torch.ones(64)}
    with pytest.raises(ValueError, match=r"unexpected \[blocks\.0\.ls1\.gamma\]"):
        import_vit(ViTEncoder((32, 32), config=ViTConfig(**TINY)), state)
    with pytest.raises(ValueError, match=r"mismatched \[patch_embed\.proj\.weight"):
        import_vit(ViTEncoder((32, 32), in_chans=1, config=ViTConfig(**TINY)), ref.state_dict())


def test_non_state_dict_files_are_named(tmp_path):
    listing = tmp_path / "list.pth"
    torch.save([1, 2, 3], listing)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\n")
    for path in (listing, text):
        with pytest.raises(ValueError, match=str(path)):
            load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        load_checkpoint(tmp_path / "absent.pth")


def test_strip_prefixes_repeatedly():
    state = {"module._orig_mod.blocks.0.x": torch.zeros(1), "model.norm.weight": torch.ones(1)}
    assert sorted(strip_prefixes(state)) == ["blocks.0.x", "norm.weight"]
    with pytest.raises(ValueError, match="collide"):
        strip_prefixes({"module.a": torch.zeros(1), "a": torch.zeros(1)})
