"""Source separation: STFT front end, oracle masks, targets, mix-and-separate training via CLI."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from avpretrain.data.loading.audio import FbankConfig, fbank
from avpretrain.data.loading.video import decode_jpeg, frame_transform
from avpretrain.heads.separation import SeparationHead
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.metrics.separation import bss_metrics
from avpretrain.tasks.separation import (
    SeparationTask,
    exclusive_logits,
    mask_targets,
    mix_pairs,
    psa_loss,
)
from avpretrain.tasks.separation_stft import (
    SpectrogramConfig,
    istft,
    stft,
    unwarp_frequency,
    warp_frequency,
    warp_grid,
)
from avpretrain.tasks.targets.separation import SeparationTargets, SynthObjectTargets

from .helpers import BACKBONE, ROOT, logged_rows, raw_samples, task_recipe, tiny_encoders, write


def _sop_warpgrid(bs, height, width, warp=True):
    """Sound of Pixels' ``utils.warpgrid``, copied as the reference."""
    xv, yv = np.meshgrid(np.linspace(-1, 1, width), np.linspace(-1, 1, height))
    grid = np.zeros((bs, height, width, 2))
    grid[..., 0] = xv
    if warp:
        grid[..., 1] = (np.power(21, (yv + 1) / 2) - 11) / 10
    else:
        grid[..., 1] = np.log(yv * 10 + 11) / np.log(21) * 2 - 1
    return grid.astype(np.float32)


@pytest.mark.parametrize("warp", [True, False])
def test_warp_grid_is_sops(warp):
    got = warp_grid(256, 7, warp)
    np.testing.assert_allclose(got.numpy(), _sop_warpgrid(1, 256, 7, warp), atol=1e-6)


def test_warp_is_row_interpolation_at_log_positions():
    spec = torch.rand(2, 40, 6)
    got = warp_frequency(spec, 16)
    # independent route: np.interp of every column at the grid's rows (align_corners=True)
    rows = (_sop_warpgrid(1, 16, 6)[0, :, 0, 1] + 1) / 2 * (40 - 1)
    for b in range(2):
        for t in range(6):
            ref = np.interp(rows, np.arange(40), spec[b, :, t].numpy())
            np.testing.assert_allclose(got[b, :, t].numpy(), ref, atol=1e-5)


def test_warp_unwarp_round_trip_on_smooth_spectra():
    f = torch.linspace(0, 1, 512)[:, None]
    spec = (torch.exp(-3 * f) + 0.3 * torch.sin(6 * f + torch.linspace(0, 3, 64))).expand(512, 64)
    back = unwarp_frequency(warp_frequency(spec[None], 256), 512)[0]
    assert back.shape == spec.shape
    assert (back - spec).abs().max() < 1e-3 * spec.abs().max()


def test_stft_istft_reconstructs_and_matches_torchaudio():
    cfg = SpectrogramConfig()
    wave = torch.randn(2, 65535) * 0.1
    mag, phase = stft(wave, cfg)
    assert mag.shape == (2, 512, 256)  # SoP: 512 x 256 for 65535 samples
    ref = torchaudio.transforms.Spectrogram(n_fft=1022, hop_length=256, power=None)(wave)
    torch.testing.assert_close(mag, ref.abs(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(istft(mag, phase, cfg, 65535), wave, atol=1e-5, rtol=0)


def _two_sources(n: int, rate: int) -> torch.Tensor:
    """Two harmonic tones (196 Hz and 311 Hz), amplitude-modulated: [2, n]."""
    t = torch.arange(n) / rate
    tones = []
    for f0, am in ((196.0, 1.5), (311.0, 2.3)):
        wave = sum(torch.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
        tones.append(0.3 * wave * (0.6 + 0.4 * torch.sin(2 * np.pi * am * t)))
    return torch.stack(tones)


def test_oracle_binary_mask_separates_far_above_the_mixture():
    cfg = SpectrogramConfig()
    sources = _two_sources(22050, cfg.sample_rate) / 2
    mix = sources.sum(0)
    mag_mix, phase_mix = stft(mix, cfg)
    mags = stft(sources, cfg)[0]
    mask = mask_targets(mags[None], mag_mix[None])[0]  # [2, F, T] on the linear axis
    ests = istft(mag_mix * mask, phase_mix, cfg, mix.shape[-1])
    score = bss_metrics(sources, ests, mix)
    assert score["sdr"] > 15 and score["sdr"] > score["sdr_mix"] + 12
    # the task's route: masks on the warped axis, unwarped and thresholded
    task = SeparationTask(SeparationHead(channels=(4,), feature_channels=2), backbone=BACKBONE)
    warped = mask_targets(warp_frequency(mags, 256)[None], warp_frequency(mag_mix, 256)[None])
    out = {"logits": (warped * 2 - 1) * 20, "mag_mix": mag_mix[None], "phase_mix": phase_mix[None]}
    task_score = bss_metrics(sources, task.estimates({**out, "mixture": mix[None]})[0])
    assert task_score["sdr"] > score["sdr_mix"] + 8


def test_mix_pairs_and_target_rules():
    wave = torch.arange(6.0).reshape(3, 2)
    sources, mix = mix_pairs(wave)
    torch.testing.assert_close(sources[:, 1] * 2, wave[[2, 0, 1]])
    torch.testing.assert_close(mix, (wave + wave[[2, 0, 1]]) / 2)
    with pytest.raises(ValueError, match="at least 2 clips"):
        mix_pairs(wave[:1])
    mags = torch.tensor([[[[3.0, 1.0, 2.0]], [[1.0, 1.0, 2.1]]]])  # [1, 2, 1, 3]
    mag_mix = torch.tensor([[[3.0, 2.5, 4.0]]])
    half = mask_targets(mags, mag_mix)
    torch.testing.assert_close(half[0, :, 0], torch.tensor([[1.0, 0, 0], [0, 0, 1]]))
    dom = mask_targets(mags, mag_mix, "dominant")
    torch.testing.assert_close(dom[0, :, 0], torch.tensor([[1.0, 1, 0], [0, 1, 1]]))


def test_targets_resample_around_the_chosen_frame(tiny_world):
    raw = next(iter(raw_samples(tiny_world / "val").values()))
    meta = json.loads(raw["json"])
    audio, rate = sf.read(io.BytesIO(raw["flac"]), dtype="float32")
    ref = torchaudio.functional.resample(torch.from_numpy(audio), rate, 11025)
    last = len(meta["frame_times"]) - 1
    targets = SeparationTargets(11025, 8000)
    got = targets({**raw, "__frame_indices__": [last]}, meta, None)["sep_wave"]
    start = min(round(meta["frame_times"][last] * 11025) - 4000, ref.shape[0] - 8000)
    assert got.shape == (8000,) and start > 0
    torch.testing.assert_close(got, ref[start : start + 8000])
    longer = SeparationTargets(11025, ref.shape[0] + 100)(raw, meta, None)["sep_wave"]
    torch.testing.assert_close(longer[: ref.shape[0]], ref)
    assert not longer[ref.shape[0] :].any()  # zero-padded past the clip
    loud = targets({**raw, "__frame_indices__": [last]}, meta, SimpleNamespace(train=True))
    gain = loud["sep_wave"].abs().max() / got.abs().max()
    assert 0.5 <= gain < 1.5  # SoP's random volume in training (no clipping at these levels)
    torch.testing.assert_close(loud["sep_wave"], got * gain)


def test_object_targets_give_the_objects_source_and_frame(tiny_world):
    for raw in raw_samples(tiny_world / "val").values():  # a clip with an interfering source
        meta = json.loads(raw["json"])
        gt = np.load(io.BytesIO(raw["gt.npz"]))
        objects = meta["synthetic"]["objects"]
        eligible = [j for j, o in enumerate(gt["source_object"]) if objects[o]["on_screen"]]
        if len(gt["sources"]) >= 2 and eligible:
            break
    else:
        pytest.fail("no val clip with two sources and an on-screen one")
    idx = 1
    sample = {**raw, "__frame_indices__": [idx], "__frames__": [raw[f"f{idx:02d}.jpg"]]}
    opts = SimpleNamespace(train=False, frame_size=32)
    out = SynthObjectTargets(11025, 16383)(sample, meta, opts)
    start = min(round(meta["frame_times"][idx] * 11025) - 16383 // 2, 22050 - 16383)
    rate = meta["sample_rate"]
    want = torchaudio.functional.resample(torch.from_numpy(gt["sources"]), rate, 11025)
    np.testing.assert_allclose(
        out["sep_source"], want[eligible[0], start : start + 16383], atol=1e-5
    )
    others = want.sum(0) - want[eligible[0]]
    # a sum of resampled sources against the resampled sum: float32 rounding of a few sources
    np.testing.assert_allclose(out["sep_rest"], others[start : start + 16383], atol=5e-5)
    # the clip's audio is the sum of its sources (up to FLAC quantisation)
    np.testing.assert_allclose(out["sep_wave"], want.sum(0)[start : start + 16383], atol=2e-3)
    alone = torch.from_numpy(gt["masks"][idx] == gt["source_object"][eligible[0]] + 1)
    black = frame_transform(torch.zeros(3, 32, 32, dtype=torch.uint8), 32)
    full = frame_transform(decode_jpeg(sample["__frames__"][0]), 32)
    torch.testing.assert_close(out["video"][:, ~alone], black[:, ~alone])
    torch.testing.assert_close(out["video"][:, alone], full[:, alone])


def test_on_screen_sources_leave_the_off_screen_sound_out(tiny_world):
    """``sources="on_screen"``: the sum of the on-screen objects' gt sources, not the clip."""
    checked = 0
    for raw in raw_samples(tiny_world / "val").values():
        meta = json.loads(raw["json"])
        gt = np.load(io.BytesIO(raw["gt.npz"]))
        objects = meta["synthetic"]["objects"]
        shown = [k for k, o in enumerate(gt["source_object"]) if objects[int(o)]["on_screen"]]
        want = torchaudio.functional.resample(
            torch.from_numpy(gt["sources"][shown].sum(0)), meta["sample_rate"], 11025
        )
        got = SeparationTargets(11025, 8000, sources="on_screen")(raw, meta, None)["sep_wave"]
        start = round(want.shape[0] / 2) - 4000  # no frame chosen: centred on the clip
        # torchaudio's cached Resample kernel against its functional one: float32 rounding
        np.testing.assert_allclose(got, want[start : start + 8000], atol=5e-5)
        if len(shown) < len(gt["sources"]):  # an off-screen sound: the clip's audio differs
            clip = SeparationTargets(11025, 8000)(raw, meta, None)["sep_wave"]
            assert (clip - got).abs().max() > 1e-2
            checked += 1
    assert checked > 0, "no val clip with an off-screen sound"
    raw = next(iter(raw_samples(tiny_world / "val").values()))
    del raw["gt.npz"]
    with pytest.raises(ValueError, match="gt.npz"):
        SeparationTargets(11025, 8000, sources="on_screen")(raw, json.loads(raw["json"]), None)


@pytest.mark.parametrize("recipe", sorted((ROOT / "tasks" / "separation").glob("*.yaml")), ids=str)
def test_every_recipe_parses(recipe, capsys):
    with pytest.raises(SystemExit) as exc:
        run_lightning_cli(["fit", "--config", str(recipe), "--print_config"])
    assert exc.value.code == 0
    assert "avpretrain.tasks.separation.SeparationTask" in capsys.readouterr().out


def test_mix_and_separate_through_cli_logs_sdr_and_keeps_encoders(tiny_world, tmp_path):
    encoders = tiny_encoders(tmp_path / "enc.pt")
    cfg = task_recipe("separation/synth.yaml", tiny_world, tmp_path / "run", encoders=str(encoders))
    init = cfg["model"]["init_args"]
    init["head"]["init_args"].update(channels=[8, 16, 16], feature_channels=8)
    cfg["data"]["init_args"]["targets"]["init_args"]["num_samples"] = 16383  # 2 s clips
    init["max_scored"] = 2  # mir_eval: ~1 s per mixture
    init["spectrogram"].update(n_fft=510, warp_bins=128)  # smaller maps for the time budget
    cfg["trainer"].update(max_epochs=1, num_sanity_val_steps=0, check_val_every_n_epoch=1)
    before = torch.load(encoders, weights_only=False)
    cli = run_lightning_cli(["fit", "--config", str(write(cfg, tmp_path / "sep.yaml"))])
    assert cli.trainer.global_step > 0
    rows = logged_rows(tmp_path / "run")
    logged = [r for r in rows if r.get("val/SDR")]
    assert len(logged) == 1
    for key in ("val/SDR", "val/SIR", "val/SAR", "val/SDR_mix"):
        assert np.isfinite(float(logged[0][key]))
    # linear probe: the encoders are those of the file, the head trained
    state = cli.model.backbone.state_dict()
    saved = before["state_dict"]
    common = [k for k in saved if k in state]
    assert common and all(torch.equal(state[k].cpu(), saved[k]) for k in common)
    # initialised at 1, moved by training (the shared bias cancels in the recipe's softmax)
    assert (cli.model.head.scale - 1).abs().max().item() > 0
    # the logged SDR_mix is the mixture baseline of the first two val pairs, recomputed apart
    batch = next(iter(cli.datamodule.val_dataloader()))
    sources, mix = mix_pairs(batch["sep_wave"])
    base = [bss_metrics(sources[i], mix[i][None].expand(2, -1))["sdr"] for i in range(2)]
    assert float(logged[0]["val/SDR_mix"]) == pytest.approx(np.mean(base), abs=1e-4)


@pytest.mark.slow
def test_own_mixture_mode_through_cli(tiny_world, tmp_path):
    cfg = task_recipe("separation/synth.yaml", tiny_world, tmp_path / "run", mixture="own")
    init, data = cfg["model"]["init_args"], cfg["data"]["init_args"]
    init["head"]["init_args"].update(channels=[8, 16], feature_channels=4)
    init.update(max_scored=None)  # single-source clips are skipped: score the whole val set
    init["spectrogram"].update(n_fft=510, warp_bins=128)
    data["targets"] = {
        "class_path": "avpretrain.tasks.targets.separation.SynthObjectTargets",
        "init_args": {"sample_rate": 11025, "num_samples": 16383},
    }
    data["extra_members"] = ["gt.npz"]
    cfg["trainer"].update(max_epochs=1, num_sanity_val_steps=0, check_val_every_n_epoch=1)
    cli = run_lightning_cli(["fit", "--config", str(write(cfg, tmp_path / "own.yaml"))])
    assert cli.trainer.global_step > 0
    metrics = cli.trainer.callback_metrics
    assert {"val/SDR", "val/SIR", "val/SAR", "val/SDR_mix"} <= set(metrics)
    assert metrics["val/skipped"] > 0 and np.isfinite(float(metrics["val/SDR"]))


def test_oracle_classes_are_the_on_screen_sounding_sources(tiny_world):
    """``sep_classes``: the classes of the gt sources whose objects are on screen."""
    seen = 0
    for raw in raw_samples(tiny_world / "val").values():
        meta = json.loads(raw["json"])
        objects = meta["synthetic"]["objects"]
        owners = np.load(io.BytesIO(raw["gt.npz"]))["source_object"]
        want = torch.zeros(4)
        for o in owners:  # gt sources are the sounding objects
            if objects[int(o)]["on_screen"]:
                want[objects[int(o)]["class_id"]] = 1
        got = SeparationTargets(11025, 8000, oracle_classes=4)(raw, meta, None)
        torch.testing.assert_close(got["sep_classes"], want)
        seen += int(want.sum() > 0)
    assert seen > 0
    with pytest.raises(ValueError, match="outside oracle_classes 1"):
        for raw in raw_samples(tiny_world / "val").values():
            SeparationTargets(11025, 8000, oracle_classes=1)(raw, json.loads(raw["json"]), None)
    assert "sep_classes" not in SeparationTargets(11025, 8000)(raw, json.loads(raw["json"]), None)


def test_oracle_conditioning_reads_the_classes_not_the_video():
    head = SeparationHead(channels=[8, 16], feature_channels=4)
    task = SeparationTask(head=head, backbone=BACKBONE, oracle_classes=3)
    assert head.visual_dim == 3
    task.eval()
    wave = torch.randn(4, 4000) * 0.1
    hot = torch.eye(3)[[0, 1, 2, 0]]
    batch = {"sep_wave": wave, "sep_classes": hot, "video": torch.randn(4, 3, 32, 32)}
    with torch.no_grad():
        torch.nn.init.normal_(head.visual_proj.weight, std=3.0)
        out = task(batch)["logits"]
        same = task({**batch, "video": torch.randn(4, 3, 32, 32)})["logits"]
        other = task({**batch, "sep_classes": hot.roll(1, dims=1)})["logits"]
    torch.testing.assert_close(out, same)  # the video is not read
    assert (out - other).abs().max() > 1e-3  # the classes are
    with pytest.raises(ValueError, match="sep_classes"):
        task({"sep_wave": wave, "video": batch["video"]})


def test_ratio_targets_are_each_sources_share():
    mags = torch.tensor([[[[3.0, 0.0, 2.0]], [[1.0, 0.0, 6.0]]]])  # [1, 2, 1, 3]
    ratio = mask_targets(mags, mags.sum(1), "ratio")
    # 3 / (3 + 1), silent bin split evenly, 2 / (2 + 6)
    torch.testing.assert_close(ratio[0, :, 0], torch.tensor([[0.75, 0.5, 0.25], [0.25, 0.5, 0.75]]))


def test_psa_loss_is_the_spectral_error_of_the_masked_mixture():
    """Where the target is not truncated, loss = sum |M X - S|^2 less what no mask can change."""
    torch.manual_seed(0)
    mixture = torch.randn(2, 6, 5, dtype=torch.complex64)  # [B, F, T]
    share = torch.rand(2, 2, 6, 5) * 0.8 + 0.1  # |S| / |X| in (0.1, 0.9)
    turn = (torch.rand(2, 2, 6, 5) - 0.5) * 0.6  # |angle S - angle X| < 0.3 rad
    sources = mixture[:, None] * share * torch.exp(1j * turn)
    mask = torch.rand(2, 2, 6, 5)
    error = (mask * mixture[:, None] - sources).abs().square()  # complex arithmetic
    fixed = (sources.abs() * torch.sin(turn)).square()  # the part off the mixture's phase
    energy = 2 * mixture.abs().square().sum(dim=(1, 2))
    expected = ((error - fixed).sum(dim=(1, 2, 3)) / energy).mean()
    torch.testing.assert_close(psa_loss(mask, sources, mixture), expected)
    # the best mask is |S| cos / |X| (here in (0, 1)): loss 0 there, positive elsewhere
    best = share * torch.cos(turn)
    assert psa_loss(best, sources, mixture) < 1e-10
    assert psa_loss((best + 0.05).clamp(0, 1), sources, mixture) > 1e-4


def test_psa_loss_truncates_the_target_to_what_a_mask_can_reach():
    mixture = torch.ones(1, 1, 3, dtype=torch.complex64)  # |X| = 1, phase 0
    # bins: a source 1.5 |X| in phase (target 1), one in anti-phase (target 0), half at 60 deg
    sources = torch.tensor([[[[1.5, -1.0, 0.5 * (0.5 + 0.75**0.5 * 1j)]]]], dtype=torch.complex64)
    loss = psa_loss(torch.tensor([[[[1.0, 0.0, 0.25]]]]), sources, mixture)
    assert float(loss) < 1e-10  # targets 1, 0, 0.5 cos 60 = 0.25, each reached
    loss = psa_loss(torch.tensor([[[[0.0, 1.0, 0.0]]]]), sources, mixture)
    torch.testing.assert_close(loss, torch.tensor((1 + 1 + 0.25**2) / 3))


def test_psa_task_loss_trains_masks_that_separate():
    """One batch of two tones: the PSA loss on the task's warped masks learns to separate."""
    torch.manual_seed(0)
    head = SeparationHead(channels=[8, 16], feature_channels=2)
    task = SeparationTask(head=head, backbone=BACKBONE, oracle_classes=2, mask_loss="psa")
    tones = _two_sources(8192, 11025)
    batch = {"sep_wave": tones, "sep_classes": torch.eye(2), "video": torch.zeros(2, 3, 32, 32)}
    opt = torch.optim.Adam(task.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = task._loss(task(batch))
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    task.eval()
    with torch.no_grad():
        out = task(batch)
        task.mask_threshold = None
        score = bss_metrics(out["sources"][0], task.estimates(out)[0], out["mixture"][0])
    assert score["sdr"] > score["sdr_mix"] + 3
    with pytest.raises(ValueError, match="mask_loss"):
        SeparationTask(head=SeparationHead(), backbone=BACKBONE, mask_loss="l1")


def test_exclusive_logits_are_the_softmax_over_sources():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5) * 4
    torch.testing.assert_close(torch.sigmoid(exclusive_logits(logits)), logits.softmax(dim=1))
    pair = torch.tensor([[[[2.0]], [[-1.0]]]])  # two sources: l0 - l1 and l1 - l0
    torch.testing.assert_close(exclusive_logits(pair), torch.tensor([[[[3.0]], [[-3.0]]]]))
    with pytest.raises(ValueError, match="at least 2"):
        exclusive_logits(logits[:, :1])


def test_softmax_masks_split_the_mixture_and_start_at_its_sdr():
    """Estimates sum to the mixture; with equal logits (at init) each is half the mixture."""
    torch.manual_seed(0)
    head = SeparationHead(channels=[8, 16], feature_channels=2)
    task = SeparationTask(
        head=head,
        backbone=BACKBONE,
        oracle_classes=2,
        mask_activation="softmax",
        mask_threshold=None,
    )
    batch = {"sep_wave": _two_sources(8192, 11025), "sep_classes": torch.eye(2)}
    task.eval()
    with torch.no_grad():
        torch.nn.init.normal_(head.visual_proj.weight, std=3.0)
        out = task(batch)
        masks = task._linear_mask(out["logits"])
        torch.testing.assert_close(masks.sum(dim=1), torch.ones_like(masks[:, 0]))
        torch.nn.init.zeros_(head.visual_proj.weight)  # the same logits for both sources
        out = task(batch)
        est = task.estimates(out)
    # the STFT round trip of half the mixture, for both sources
    torch.testing.assert_close(est[:, 0], est[:, 1])
    torch.testing.assert_close(est[:, 0], out["mixture"] / 2, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="mask_activation"):
        SeparationTask(head=SeparationHead(), backbone=BACKBONE, mask_activation="relu")


def test_mixture_audio_feeds_the_audio_encoders_tokens_of_the_mixture(tmp_path):
    """The grid is the audio encoder on the mixture's kaldi fbank (torchaudio, per clip)."""
    torch.manual_seed(0)
    encoders = tiny_encoders(tmp_path / "enc.pt")
    head = SeparationHead(channels=[8, 16], feature_channels=4)
    task = SeparationTask(head=head, encoders=str(encoders), backbone=BACKBONE, mixture_audio=True)
    task.eval()
    assert head.audio_dim == task.backbone.audio_encoder.embed_dim
    assert task.mixture_fbank.cfg.num_mel_bins == 128  # the encoder's input: BACKBONE's 128 x 192
    assert task.mixture_fbank.cfg.target_frames == 192
    mixture = torch.randn(2, 22050) * 0.1  # 2 s at 11025 Hz
    with torch.no_grad():
        grid = task.mixture_tokens(mixture)
        wave = torchaudio.functional.resample(mixture, 11025, 16000)
        feats = torch.stack([fbank(w, task.mixture_fbank.cfg) for w in wave])  # [2, 1, 128, 192]
        tokens = task.backbone.audio_encoder.forward_features(feats)[:, 1:]  # class token out
    rows, cols = task.backbone.audio_encoder.grid_size
    assert grid.shape == (2, tokens.shape[-1], rows, cols)
    # row r, column c of the grid is patch r * cols + c (frequency-major patch order)
    torch.testing.assert_close(grid[:, :, 1, 2], tokens[:, 1 * cols + 2], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(grid.flatten(2).transpose(1, 2), tokens, atol=1e-3, rtol=1e-3)
    batch = {"sep_wave": mixture, "video": torch.randn(2, 3, 32, 32)}
    with torch.no_grad():
        out = task(batch)["logits"]
        torch.nn.init.normal_(task.backbone.audio_encoder.patch_embed.proj.weight)
        assert (task(batch)["logits"] - out).abs().max() > 1e-4  # the audio encoder is read
    with pytest.raises(ValueError, match="mixture_audio"):
        SeparationTask(head=SeparationHead(), backbone=BACKBONE, mixture_fbank=FbankConfig())
