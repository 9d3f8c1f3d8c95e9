"""Fine-tuned checkpoints: global-pool ``fc_norm``, class-token pooling, classifier heads and
``no_embed_class`` position tables, each against the timm model whose state dict it is."""

import pytest
import timm
import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from avpretrain.heads.classification import LinearHead
from avpretrain.models import AVMAE
from avpretrain.models.encoder_file import load_encoders, save_encoders
from avpretrain.models.vit import ViTConfig, ViTEncoder
from avpretrain.models.weights import import_audiomae, import_mae, import_vit, import_weights

TINY = ViTConfig(embed_dim=64, depth=2, num_heads=4)


def timm_vit(**kwargs) -> VisionTransformer:
    """A tiny timm ViT with random norms (fresh ones would hide a norm loaded in the wrong place)."""
    args = dict(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=4, num_classes=5)
    model = VisionTransformer(**{**args, **kwargs})
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.2)
    return model.eval()


def pooled_and_logits(ref: VisionTransformer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        features = ref.forward_features(x)
        return ref.forward_head(features, pre_logits=True), ref.forward_head(features)


def test_mae_finetuned_global_pool_reproduces_embedding_and_logits():
    torch.manual_seed(0)
    ref = timm_vit(global_pool="avg", fc_norm=True)  # MAE fine-tuning's layout
    state = ref.state_dict()
    assert "fc_norm.weight" in state and "norm.weight" not in state and "head.weight" in state
    ours = ViTEncoder((32, 32), config=TINY, pool="fc_norm").eval()
    report = import_mae(ours, {"model": {f"module.{k}": v for k, v in state.items()}})
    assert report.classifier["weight"].shape == (5, 64) and not report.missing
    x = torch.randn(2, 3, 32, 32)
    pooled, logits = pooled_and_logits(ref, x)
    head = LinearHead(5, norm=False)
    head.load_linear(report.classifier)
    with torch.no_grad():
        torch.testing.assert_close(
            ours.forward_features(x), ref.forward_features(x), atol=1e-5, rtol=1e-5
        )
        torch.testing.assert_close(ours.forward_embedding(x), pooled, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(head(ours.forward_embedding(x)), logits, atol=1e-5, rtol=1e-5)


def test_global_pool_checkpoint_into_another_pooling_says_how_to_build():
    state = timm_vit(global_pool="avg", fc_norm=True).state_dict()
    with pytest.raises(ValueError, match="pool='fc_norm'"):
        import_mae(ViTEncoder((32, 32), config=TINY), state)


def test_audiomae_finetuned_global_pool_in_our_layout():
    torch.manual_seed(0)
    # AudioMAE input [B, 1, T, F] = 64 x 16, patches 16 x 8 -> a (4, 2) grid; 7 "AudioSet" classes
    ref = timm_vit(
        img_size=(64, 16), patch_size=(16, 8), in_chans=1, num_classes=7, global_pool="avg"
    )
    ours = ViTEncoder((16, 64), (8, 16), 1, TINY, pool="fc_norm").eval()
    report = import_audiomae(ours, ref.state_dict(), num_mel_bins=16)
    x_ft = torch.randn(2, 1, 16, 64)
    pooled, logits = pooled_and_logits(ref, x_ft.transpose(-1, -2))
    head = LinearHead(7, norm=False)
    head.load_linear(report.classifier)
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_embedding(x_ft), pooled, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(head(ours.forward_embedding(x_ft)), logits, atol=1e-5, rtol=1e-5)


def test_timm_class_token_pooling():
    torch.manual_seed(0)
    ref = timm_vit(global_pool="token", num_classes=3)
    ours = ViTEncoder((32, 32), config=TINY, pool="cls").eval()
    report = import_vit(ours, ref.state_dict())
    x = torch.randn(2, 3, 32, 32)
    pooled, logits = pooled_and_logits(ref, x)
    head = LinearHead(3, norm=False)
    head.load_linear(report.classifier)
    with torch.no_grad():
        torch.testing.assert_close(ours.forward_embedding(x), pooled, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(head(ours.forward_embedding(x)), logits, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="classes"):
        LinearHead(4).load_linear(report.classifier)


@pytest.mark.parametrize("layout", ["image", "time_freq"])
def test_no_embed_class_position_table(layout):
    torch.manual_seed(0)
    if layout == "image":
        ref = timm_vit(no_embed_class=True, num_classes=0)
        ours = ViTEncoder((32, 32), config=TINY).eval()
        x_ref = x = torch.randn(2, 3, 32, 32)
    else:
        ref = timm_vit(
            img_size=(64, 16), patch_size=(16, 8), in_chans=1, no_embed_class=True, num_classes=0
        )
        ours = ViTEncoder((16, 64), (8, 16), 1, TINY).eval()
        x = torch.randn(2, 1, 16, 64)
        x_ref = x.transpose(-1, -2)
    assert ref.pos_embed.shape[1] == ref.patch_embed.num_patches  # no class-token row
    if layout == "image":
        report = import_mae(ours, ref.state_dict())
    else:
        report = import_audiomae(ours, ref.state_dict(), num_mel_bins=16)
    assert any("no_embed_class" in entry for entry in report.ignored)
    with torch.no_grad():
        expected = ref.forward_features(x_ref)
        got = ours(x)
        torch.testing.assert_close(got[:, 0], expected[:, 0], atol=1e-5, rtol=1e-5)  # class token
        torch.testing.assert_close(
            got[:, 1:].mean(1), expected[:, 1:].mean(1), atol=1e-5, rtol=1e-5
        )


def test_avmae_keeps_the_checkpoint_pooling_through_export(tmp_path):
    torch.manual_seed(0)
    ref = timm_vit(global_pool="avg", fc_norm=True)
    path = tmp_path / "mae_finetuned.pth"
    torch.save({"model": ref.state_dict()}, path)
    model = AVMAE(
        encoder=TINY,
        decoder="tiny_decoder",
        audio_shape=(32, 64),
        video_size=32,
        video_pool="fc_norm",
    )
    import_weights(model, "mae", path)
    x = torch.randn(2, 3, 32, 32)
    pooled, _ = pooled_and_logits(ref, x)
    reloaded = load_encoders(save_encoders(model, tmp_path / "encoders.pt")).eval()
    assert reloaded.video_encoder.pool == "fc_norm" and reloaded.audio_encoder.pool == "mean"
    with torch.no_grad():
        embedding = reloaded.encode(video=x)["video_embedding"]
    torch.testing.assert_close(embedding, pooled, atol=1e-5, rtol=1e-5)


def test_pooling_names_are_checked():
    with pytest.raises(ValueError, match="needs a class token"):
        ViTEncoder((32, 32), config=TINY, cls_token=False, pool="cls")
    with pytest.raises(ValueError, match="pool must be one of"):
        ViTEncoder((32, 32), config=TINY, pool="max")
    assert timm.__version__  # timm is the reference of every test here
