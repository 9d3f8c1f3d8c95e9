import pytest
import torch

from avpretrain.models import AVMAE
from avpretrain.models.losses import masked_mse

AUDIO_SHAPE, VIDEO_SIZE = (32, 64), 64  # 2 x 4 = 8 audio patches, 4 x 4 = 16 video patches


def _tiny(**kwargs) -> AVMAE:
    torch.manual_seed(0)
    args = dict(
        encoder="tiny", decoder="tiny_decoder", audio_shape=AUDIO_SHAPE, video_size=VIDEO_SIZE,
        mask_ratio_audio=0.5, mask_ratio_video=0.75,
    )  # fmt: skip
    return AVMAE(**{**args, **kwargs})


def _batch(b=2, frames=None):
    g = torch.Generator().manual_seed(1)
    audio = torch.randn(b, 1, *AUDIO_SHAPE, generator=g)
    shape = (
        (b, 3, VIDEO_SIZE, VIDEO_SIZE) if frames is None else (b, 3, frames, VIDEO_SIZE, VIDEO_SIZE)
    )
    return audio, torch.randn(*shape, generator=g)


def test_output_shapes_and_mask_ratios():
    model = _tiny()
    audio, video = _batch()
    out = model(audio, video)
    assert out.pred_audio.shape == (2, 8, 256) and out.pred_video.shape == (2, 16, 768)
    assert torch.all(out.mask_audio.sum(1) == 8 - int(8 * 0.5))
    assert torch.all(out.mask_video.sum(1) == 16 - int(16 * 0.25))
    assert out.loss_contrastive.ndim == 0 and out.loss_contrastive.item() == 0.0
    # Total loss and per-modality losses are the documented combination of masked_mse.
    target_a = model.audio_encoder.patchify(audio)
    expected_a = masked_mse(out.pred_audio, target_a, out.mask_audio, norm_pix=True)
    torch.testing.assert_close(out.loss_audio, expected_a)
    torch.testing.assert_close(out.loss, out.loss_audio + out.loss_video)


def test_loss_weights():
    model = _tiny(weight_audio=2.0, weight_video=0.5, contrastive_weight=0.1)
    out = model(*_batch())
    expected = 2.0 * out.loss_audio + 0.5 * out.loss_video + 0.1 * out.loss_contrastive
    torch.testing.assert_close(out.loss, expected)
    assert out.loss_contrastive > 0


def test_loss_decreases_on_fixed_batch():
    model = _tiny()
    audio, video = _batch()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    losses = []
    for _ in range(20):
        out = model(audio, video, generator=torch.Generator().manual_seed(0))  # fixed masks
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.85 * losses[0], losses  # steady descent: 2.27 -> 1.74 when written


def test_fusion_and_contrastive_give_every_trainable_parameter_a_gradient():
    model = _tiny(fusion_layers=1, contrastive_weight=0.01)
    assert len(model.fusion) == 1
    out = model(*_batch())
    out.loss.backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert "audio_modality_token" in trainable and "fusion.0.attn.qkv.weight" in trainable
    missing = [n for n, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert sorted(frozen) == sorted(
        [
            "audio_encoder.pos_embed",
            "video_encoder.pos_embed",
            "audio_decoder.decoder_pos_embed",
            "video_decoder.decoder_pos_embed",
        ]
    )


def test_structured_audio_mask_through_model():
    model = _tiny(audio_mask_mode="time", mask_ratio_audio=0.75)
    out = model(*_batch())
    cols_masked = out.mask_audio.reshape(2, 2, 4).min(dim=1).values.sum(1)
    assert torch.all(cols_masked >= int(4 * 0.75))
    assert torch.all(out.mask_audio.sum(1) == 8 - int(8 * 0.25))


def test_tubelet_video():
    model = _tiny(num_frames=4, tubelet=2)
    out = model(*_batch(frames=4))
    assert out.pred_video.shape == (2, 2 * 4 * 4, 2 * 16 * 16 * 3)


def test_longer_audio_than_built_runs_with_resized_positions():
    model = _tiny()
    audio = torch.randn(2, 1, 32, 128)
    out = model(audio, _batch()[1])
    assert out.pred_audio.shape == (2, 16, 256) and out.mask_audio.shape == (2, 16)


@pytest.mark.parametrize("fusion_layers", [0, 1])
def test_encode_single_and_both_modalities(fusion_layers):
    model = _tiny(fusion_layers=fusion_layers).eval()
    audio, video = _batch()
    only_audio = model.encode(audio=audio)
    assert set(only_audio) == {"audio_tokens", "audio_embedding"}
    assert only_audio["audio_tokens"].shape == (2, 9, 64)
    torch.testing.assert_close(
        only_audio["audio_embedding"], only_audio["audio_tokens"][:, 1:].mean(1)
    )
    only_video = model.encode(video=video)
    assert set(only_video) == {"video_tokens", "video_embedding"}
    assert only_video["video_embedding"].shape == (2, 64)
    both = model.encode(audio, video)
    assert both["tokens"].shape == (2, 9 + 17, 64) and both["embedding"].shape == (2, 64)
    if fusion_layers == 0:  # independent encoders: joint call equals the separate ones
        torch.testing.assert_close(both["audio_tokens"], only_audio["audio_tokens"])
    with pytest.raises(ValueError, match="needs audio"):
        model.encode()


def test_reconstruct_pastes_visible_patches():
    model = _tiny().eval()
    audio, video = _batch()
    out = model(audio, video)
    figs = model.reconstruct(audio, video, out)
    assert figs["audio_recon"].shape == audio.shape and figs["video_recon"].shape == video.shape
    visible = (1 - out.mask_audio)[:, :, None].expand(-1, -1, 256).bool()
    recon_patches = model.audio_encoder.patchify(figs["audio_recon"])
    torch.testing.assert_close(recon_patches[visible], model.audio_encoder.patchify(audio)[visible])
    assert torch.all(model.audio_encoder.patchify(figs["audio_masked"])[~visible] == 0)


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="audio_mask_mode"):
        _tiny(audio_mask_mode="diagonal")
    with pytest.raises(ValueError, match="equal encoder widths"):
        _tiny(video_encoder="small", fusion_layers=1)
    with pytest.raises(ValueError, match="mask ratio"):
        _tiny(mask_ratio_video=1.0)


def test_init_arguments_are_a_jsonargparse_schema():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(AVMAE, "model")
    cfg = parser.parse_args(
        [
            "--model.encoder=tiny",
            "--model.decoder={'embed_dim': 32, 'depth': 1, 'num_heads': 4}",
            "--model.audio_shape=[32, 64]",
            "--model.video_size=32",
        ]
    )
    model = parser.instantiate(cfg).model
    assert model.audio_decoder.decoder_embed.out_features == 32
    assert model.audio_encoder.grid_size == (2, 4)
    assert "contrastive_tau" in parser.format_help()


def test_full_contrastive_input_pools_every_patch_whatever_the_mask():
    from avpretrain.models.losses import info_nce

    audio, video = _batch(b=4)
    losses = {}
    for kind in ("masked", "full"):
        model = _tiny(contrastive_weight=1.0, contrastive_input=kind).eval()
        losses[kind] = [
            model(audio, video, generator=torch.Generator().manual_seed(s)).loss_contrastive
            for s in (0, 1)
        ]
    # masked: the pair pools the visible tokens, so another mask gives another loss
    assert not torch.allclose(*losses["masked"])
    # full: the unmasked encoders' mean-pooled tokens, the same for every mask
    model = _tiny(contrastive_weight=1.0, contrastive_input="full").eval()
    with torch.no_grad():
        emb = model.encode(audio=audio, video=video)
        expected = info_nce(emb["audio_embedding"], emb["video_embedding"], model.contrastive_tau)
    for loss in losses["full"]:
        torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="contrastive_input"):
        _tiny(contrastive_input="both")


def test_audio_view_term_is_an_infonce_between_two_views(monkeypatch):
    import avpretrain.models.avmae as avmae_module
    from avpretrain.models.losses import info_nce

    audio, video = _batch(b=4)
    model = _tiny(audio_view_weight=0.5, audio_view_shift=4, audio_view_tau=0.2).eval()
    plain = _tiny().eval()
    # known views in place of the random ones, so the term can be replayed by hand
    views = [audio.flip(-1), audio.roll(3, dims=-2)]
    calls = []

    def fake_view(x, max_shift, generator=None):
        assert max_shift == 4 and torch.equal(x, audio)
        calls.append(max_shift)
        return views[len(calls) - 1]

    monkeypatch.setattr(avmae_module, "shifted_view", fake_view)
    with torch.no_grad():
        out = model(audio, video, generator=torch.Generator().manual_seed(0))
        base = plain(audio, video, generator=torch.Generator().manual_seed(0))
        emb = [model.encode(audio=v)["audio_embedding"] for v in views]
    assert len(calls) == 2
    torch.testing.assert_close(out.loss_audio_view, info_nce(emb[0], emb[1], 0.2))
    assert base.loss_audio_view.item() == 0.0  # disabled by default
    torch.testing.assert_close(out.loss_audio, base.loss_audio)  # same weights, same masks
    torch.testing.assert_close(out.loss, base.loss + 0.5 * out.loss_audio_view)
    with pytest.raises(ValueError, match="audio_view_shift"):
        _tiny(audio_view_weight=1.0, audio_view_shift=AUDIO_SHAPE[0])


def test_video_view_term_is_an_infonce_between_two_views(monkeypatch):
    import avpretrain.models.avmae as avmae_module
    from avpretrain.models.losses import info_nce

    audio, video = _batch(b=4)
    model = _tiny(video_view_weight=0.25, video_view_scale=0.6, video_view_tau=0.3).eval()
    plain = _tiny().eval()
    views = [video.flip(-1), video.flip(1)]  # known views: a mirror and swapped channels
    calls = []

    def fake_view(x, min_scale, generator=None):
        assert min_scale == 0.6 and torch.equal(x, video)
        calls.append(min_scale)
        return views[len(calls) - 1]

    monkeypatch.setattr(avmae_module, "augmented_view", fake_view)
    with torch.no_grad():
        out = model(audio, video, generator=torch.Generator().manual_seed(0))
        base = plain(audio, video, generator=torch.Generator().manual_seed(0))
        emb = [model.encode(video=v)["video_embedding"] for v in views]
    assert len(calls) == 2
    torch.testing.assert_close(out.loss_video_view, info_nce(emb[0], emb[1], 0.3))
    assert base.loss_video_view.item() == 0.0 and out.loss_audio_view.item() == 0.0
    torch.testing.assert_close(out.loss_video, base.loss_video)
    torch.testing.assert_close(out.loss, base.loss + 0.25 * out.loss_video_view)
    with pytest.raises(ValueError, match="video_view_scale"):
        _tiny(video_view_weight=1.0, video_view_scale=0.0)


def test_video_patch_size_sets_the_video_grid_only(tmp_path):
    from avpretrain.models.encoder_file import load_encoders, save_encoders

    model = _tiny(video_patch_size=8).eval()
    assert model.video_encoder.grid_size == (VIDEO_SIZE // 8, VIDEO_SIZE // 8)
    assert model.audio_encoder.grid_size == (AUDIO_SHAPE[0] // 16, AUDIO_SHAPE[1] // 16)
    assert _tiny().video_encoder.grid_size == (VIDEO_SIZE // 16, VIDEO_SIZE // 16)
    audio, video = _batch()
    out = model(audio, video, generator=torch.Generator().manual_seed(0))
    assert out.pred_video.shape == (2, 64, 3 * 8 * 8) and out.mask_video.shape == (2, 64)
    assert int(out.mask_video.sum(1)[0]) == 48  # 75% of 64 patches
    # the exported encoders rebuild with the same grid and the same embeddings
    reloaded = load_encoders(save_encoders(model, tmp_path / "encoders.pt")).eval()
    assert reloaded.video_encoder.grid_size == (8, 8)
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded.encode(video=video)["video_embedding"],
            model.encode(video=video)["video_embedding"],
        )


def test_audio_teacher_mode_distils_the_audio_embedding_into_the_video_encoder(monkeypatch):
    import avpretrain.models.avmae as avmae_module
    from avpretrain.models.losses import info_nce

    audio, video = _batch(b=4)
    model = _tiny(
        contrastive_weight=2.0, contrastive_tau=0.1, contrastive_mode="audio_teacher",
        video_view_scale=0.6,
    ).eval()  # fmt: skip
    plain = _tiny().eval()
    view = video.flip(-1)  # a known view in place of the random one

    def fake_view(x, min_scale, generator=None):
        assert min_scale == 0.6 and torch.equal(x, video)
        return view

    monkeypatch.setattr(avmae_module, "augmented_view", fake_view)
    out = model(audio, video, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = plain(audio, video, generator=torch.Generator().manual_seed(0))
        target = model.encode(audio=audio)["audio_embedding"]  # unmasked audio
        prediction = model.encode(video=view)["video_embedding"]
    torch.testing.assert_close(out.loss_contrastive, info_nce(target, prediction, 0.1))
    torch.testing.assert_close(out.loss, base.loss + 2.0 * out.loss_contrastive)
    # the audio embedding is a target: the term trains the video encoder only
    out.loss_contrastive.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is None for n, g in grads.items() if n.startswith("audio_encoder."))
    video = [g for n, g in grads.items() if n.startswith("video_encoder.")]
    assert video and all(g is not None and g.abs().sum() > 0 for g in video)
    with pytest.raises(ValueError, match="contrastive_mode"):
        _tiny(contrastive_mode="video_teacher")
