"""Sound source localization: gt maps, the similarity head, EZ-VSL's MIL loss, and the CLI run."""

from __future__ import annotations

import io
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from avpretrain.data.loading.audio import FbankConfig
from avpretrain.data.loading.datamodule import AVDataModule
from avpretrain.data.loading.video import mask_transform
from avpretrain.heads.localization import LocalizationHead, mil_contrastive_loss, pair_maps
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.metrics.localization import flickr_gt_map, vggss_gt_map
from avpretrain.tasks.localization import LocalizationTask
from avpretrain.tasks.targets.localization import (
    boxes_to_crop,
    flickr_box_targets,
    synth_localization_targets,
    vggss_box_targets,
)

from .helpers import (
    BACKBONE,
    ROOT,
    fit_in_subprocess,
    logged_rows,
    pil_nearest,
    raw_samples,
    task_recipe,
    write,
)


def test_synth_targets_through_the_loader_are_the_sounding_objects_in_view(tiny_world):
    # not the stored 32 (the resize must act on the map as on the frame); a power-of-two ratio
    # keeps pixel centres off exact source boundaries, where float rounding of PIL and torch differ
    size = 64
    dm = AVDataModule(
        val_urls=str(tiny_world / "val"),
        batch_size=8,
        num_workers=0,
        frame_size=size,
        frame_augment=False,
        targets=synth_localization_targets,
        extra_members=["gt.npz"],
        fbank=FbankConfig(target_frames=192),
    )
    batch = next(iter(dm.val_dataloader()))
    raw = raw_samples(tiny_world / "val")
    silent_excluded = 0
    for key, gt_map, has_gt in zip(batch["key"], batch["gt_map"], batch["has_gt"], strict=True):
        meta = json.loads(raw[key]["json"])
        masks = np.load(io.BytesIO(raw[key]["gt.npz"]))["masks"]
        idx = meta["num_frames"] // 2  # the evaluation frame
        objects = meta["synthetic"]["objects"]
        ids = [i + 1 for i, o in enumerate(objects) if o["sounding"] and o["on_screen"]]
        want = pil_nearest(np.isin(masks[idx], ids).astype(np.uint8) * 255, size) > 0
        assert torch.equal(gt_map, torch.from_numpy(want).float()), key
        assert bool(has_gt) == bool(want.any())
        for i, o in enumerate(objects):
            obj = pil_nearest((masks[idx] == i + 1).astype(np.uint8) * 255, size) > 0
            if not o["sounding"] and obj.any():
                assert gt_map[torch.from_numpy(obj)].sum() == 0
                silent_excluded += 1
            if o["sounding"] and o["on_screen"] and obj.any():
                # aligned with the frame: inside the JSON box of the object at this frame, scaled
                ys, xs = np.nonzero(obj)
                x0, y0, x1, y1 = (v * size / 32 for v in o["boxes"][idx])
                assert xs.min() >= math.floor(x0) - 1 and xs.max() <= math.ceil(x1)
                assert ys.min() >= math.floor(y0) - 1 and ys.max() <= math.ceil(y1)
    assert silent_excluded > 0  # the world has silent objects in view, and they were left out


def test_crop_of_a_wide_frame_matches_pil_and_moves_boxes_with_it():
    rng = np.random.default_rng(0)
    mask = (rng.random((32, 48)) > 0.5).astype(np.uint8)
    got = mask_transform(torch.from_numpy(mask), 16)
    assert torch.equal(got, torch.from_numpy(pil_nearest(mask * 255, 16) > 0).float())
    # 48 x 32 -> 24 x 16, crop columns 4..20: x 0.25 -> (6 - 4) / 16, x 0.75 -> (18 - 4) / 16
    crop = boxes_to_crop([[0.25, 0.5, 0.75, 1.0]], width=48, height=32, size=16)
    assert crop == [pytest.approx([0.125, 0.5, 0.875, 1.0])]


def _jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def test_box_targets_follow_the_benchmark_map_rules():
    sample = {"__key__": "k", "__frames__": [_jpeg(48, 32)], "__frame_indices__": [0]}
    opts = SimpleNamespace(frame_size=16, train=False)
    boxes = [[0.25, 0.0, 0.75, 0.5], [0.5, 0.25, 1.0, 0.75]]
    meta = {"annotations": {"boxes": boxes}}
    vgg = vggss_box_targets(sample, meta, opts)
    assert torch.equal(
        vgg["gt_map"], torch.from_numpy(vggss_gt_map(boxes_to_crop(boxes, 48, 32, 16), 16)).float()
    )
    assert vgg["gt_map"].unique().tolist() == [0.0, 1.0] and bool(vgg["has_gt"])
    # Flickr: two annotators; the overlap counts 1, one annotator alone 0.5
    flickr = flickr_box_targets(sample, meta, opts)["gt_map"]
    px = [[min(max(v, 0), 1) * 16 for v in b] for b in boxes_to_crop(boxes, 48, 32, 16)]
    assert torch.equal(flickr, torch.from_numpy(flickr_gt_map(px, 16, 16)).float())
    assert flickr.unique().tolist() == [0.0, 0.5, 1.0]
    empty = vggss_box_targets(sample, {"annotations": {"boxes": []}}, opts)
    assert empty["gt_map"].sum() == 0 and not bool(empty["has_gt"])
    train = vggss_box_targets(sample, {}, SimpleNamespace(frame_size=16, train=True))
    assert train["gt_map"].shape == (16, 16) and not bool(train["has_gt"])
    with pytest.raises(ValueError, match="no annotations.boxes"):
        vggss_box_targets(sample, {}, opts)


def test_mil_loss_equals_a_hand_computation_on_two_clips():
    # maps[n, m]: image n with audio m, on a 1 x 2 grid; the logit is the max / tau
    maps = torch.tensor([[[[0.2, 0.9]], [[0.1, 0.3]]], [[[0.5, -0.4]], [[0.0, 0.6]]]])
    tau = 0.5
    lg = [[0.9 / tau, 0.3 / tau], [0.5 / tau, 0.6 / tau]]  # image rows, audio columns

    def ce(rows):
        return sum(math.log(sum(math.exp(v) for v in r)) - r[i] for i, r in enumerate(rows)) / 2

    cols = [[lg[0][0], lg[1][0]], [lg[0][1], lg[1][1]]]
    want = ce(lg) + ce(cols)
    assert mil_contrastive_loss(maps, tau).item() == pytest.approx(want, rel=1e-6)


def test_head_maps_are_cosines_of_the_projections():
    torch.manual_seed(0)
    head = LocalizationHead(dim=8, in_dim=6, audio_dim=5)
    tokens, audio = torch.randn(3, 4, 6), torch.randn(3, 5)
    maps = head(tokens, (2, 2), audio)  # [B, h, w]
    v = head.visual_proj(tokens)  # [B, N, dim]
    a = head.audio_proj(audio)
    want = F.cosine_similarity(v, a[:, None, :], dim=-1).reshape(3, 2, 2)
    assert torch.allclose(maps, want, atol=1e-6)
    pairs = pair_maps(head.visual(tokens, (2, 2)), head.audio(audio))
    assert torch.allclose(pairs.diagonal().permute(2, 0, 1), maps, atol=1e-6)
    assert not torch.allclose(pairs[0, 1], pairs[0, 0])
    with pytest.raises(ValueError, match="inputs must be 'av'"):
        LocalizationTask(LocalizationHead(8), backbone=BACKBONE, inputs="video")


def test_localization_through_cli_logs_metrics_in_range(tiny_world, tmp_path):
    cfg = task_recipe("localization/synth.yaml", tiny_world, tmp_path / "run")
    assert cfg["data"]["init_args"]["frame_augment"] is False
    assert cfg["data"]["init_args"]["extra_members"] == ["gt.npz"]
    cli = run_lightning_cli(["fit", "--config", str(write(cfg, tmp_path / "loc.yaml"))])
    assert cli.trainer.global_step > 0
    rows = logged_rows(tmp_path / "run")
    names = ["val/cIoU", "val/AUC", "val/slavc_precision", "val/slavc_AP", "val/slavc_F1"]
    logged = [r for r in rows if r.get("val/cIoU")]
    assert len(logged) == 2
    for row in logged:
        for name in names:
            assert 0.0 <= float(row[name]) <= 1.0, (name, row[name])
    assert all(float(r["val/num_pairs"]) == 16 for r in logged)  # 8 clips, 8 shifted pairs
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert losses and all(math.isfinite(v) for v in losses)


def test_evaluation_scores_an_oracle_map_and_the_non_sounding_pairs():
    """Clips 0 and 1 sound in the left / right half and their maps say so; clip 2 has no source.

    Features on an 8 x 8 grid: image k is +e_k on its half and -e_k elsewhere (clip 2: +e_2
    everywhere), audio k is e_k; the shifted pairs (image i, audio i + 1) are orthogonal: maps 0.
    """
    task = LocalizationTask(LocalizationHead(8), backbone=BACKBONE, zero_shot=False)
    task.log = lambda *args, **kwargs: None  # no trainer here
    e = torch.eye(3)
    sign = torch.ones(3, 8, 8)
    sign[0, :, 4:] = -1  # clip 0: source on the left
    sign[1, :, :4] = -1  # clip 1: source on the right
    visual = e[:, :, None, None] * sign[:, None]  # [3, C=3, 8, 8]
    task.features = lambda batch, encoded=None: (visual, e)
    gt = torch.zeros(3, 32, 32)
    gt[0, :, :16] = 1
    gt[1, :, 16:] = 1
    batch = {"key": ["a", "b", "c"], "gt_map": gt, "has_gt": torch.tensor([True, True, False])}
    task._eval_step(batch, "val")
    assert torch.cat(task.slavc.has_gt).tolist() == [1, 1, 0, 0, 0, 0]
    assert torch.cat(task.ez_vsl.cious).shape == (2,)  # clip 2 has no box: not scored
    conf = torch.cat(task.slavc.conf)
    scores = task.epoch_scores("val")
    assert scores["num_pairs"] == 6
    assert not task.slavc.update_called and not task.ez_vsl.update_called  # reset for the next
    # EZ-VSL: the median split of each map is exactly its half; clip 2 is not scored
    assert scores["cIoU"] == 1.0 and scores["AUC"] == pytest.approx(1.0)
    # SLAVC, every pair predicted: 2 true positives, 4 non-sounding false positives
    assert scores["slavc_precision"] == pytest.approx(2 / 6)
    # confidence: orthogonal pairs 0.5 (the fixed normalisation of cosine 0); clip 2's flat map
    # 1.0; the sources' ~1.035 (SLAVC's bicubic upsampling overshoots at their edges), so one
    # threshold keeps exactly the two true detections: F1 = 1
    assert conf[3:].tolist() == [0.5, 0.5, 0.5]
    assert conf[2] == pytest.approx(1.0) and conf[:2].min() > conf[2]
    assert scores["slavc_F1"] == pytest.approx(1.0)


def test_zero_shot_scores_the_backbones_own_maps_not_the_heads():
    """Backbone tokens point at the audio on the sounding half; the head's maps the other way."""
    torch.manual_seed(0)
    task = LocalizationTask(LocalizationHead(8), backbone=BACKBONE)
    assert task.zero_shot  # BACKBONE's visual and audio widths match
    task.log = lambda *args, **kwargs: None
    width = task.backbone.video_encoder.embed_dim
    audio = torch.randn(2, width)
    tokens = -audio[:, None].repeat(1, 16, 1)  # 4 x 4 grid, opposite to the audio ...
    tokens.view(2, 4, 4, width)[0, :, :2] *= -1  # ... except clip 0's left half
    tokens.view(2, 4, 4, width)[1, :, 2:] *= -1  # and clip 1's right half
    task._encode = lambda batch: (tokens, (4, 4), audio)
    with torch.no_grad():  # the head's maps are the zero-shot maps negated
        task.head.audio_proj.weight.normal_()
        task.head.visual_proj.weight.copy_(-task.head.audio_proj.weight)
        task.head.audio_proj.bias.zero_()
        task.head.visual_proj.bias.zero_()
    gt = torch.zeros(2, 32, 32)
    gt[0, :, :16] = 1
    gt[1, :, 16:] = 1
    batch = {"key": ["a", "b"], "gt_map": gt, "has_gt": torch.tensor([True, True])}
    task._eval_step(batch, "val")
    scores = task.epoch_scores("val")
    assert scores["zs_cIoU"] == 1.0 and scores["zs_mean_cIoU"] == pytest.approx(1.0)
    assert scores["mean_cIoU"] == 0.0  # the head's maps point at the other half


@pytest.mark.parametrize(
    ("recipe", "targets"),
    [("synth.yaml", "synth_localization_targets"), ("vggss.yaml", "vggss_box_targets")],
)
def test_recipes_parse(recipe, targets, capsys):
    with pytest.raises(SystemExit) as exc:
        run_lightning_cli(
            ["fit", "--config", str(ROOT / "tasks/localization" / recipe), "--print_config"]
        )
    assert exc.value.code == 0
    printed = capsys.readouterr().out
    assert "class_path: avpretrain.heads.localization.LocalizationHead" in printed
    assert f"avpretrain.tasks.targets.localization.{targets}" in printed


@pytest.mark.slow
def test_two_process_ddp_scores_the_whole_validation_set(tiny_world, tmp_path):
    cfg = task_recipe("localization/synth.yaml", tiny_world, tmp_path / "run")
    cfg["trainer"].update(strategy="ddp", devices=2, accelerator="cpu", max_epochs=1)
    cfg["data"]["init_args"]["batch_size"] = 4  # 8 val clips: one batch of 4 per rank
    path = write(cfg, tmp_path / "ddp.yaml")
    rows = fit_in_subprocess(path, tmp_path / "run")
    logged = [r for r in rows if r.get("val/slavc_precision")]
    assert len(logged) == 1
    # 8 clips + 8 non-sounding pairs (4 + 4 on each rank), scored together
    assert float(logged[0]["val/num_pairs"]) == 16
    assert 0.0 <= float(logged[0]["val/slavc_AP"]) <= 1.0
