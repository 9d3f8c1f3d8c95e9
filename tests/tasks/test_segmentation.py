"""Audio-visual segmentation: mask targets, the audio-conditioned decoder, BCE training via CLI."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from avpretrain.heads.segmentation import SegmentationHead
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.metrics.segmentation import f_score, mask_iou
from avpretrain.tasks.segmentation import SegmentationTask
from avpretrain.tasks.targets.segmentation import (
    mask_transform,
    png_mask_targets,
    synth_mask_targets,
)

from .helpers import BACKBONE, logged_rows, pil_nearest, raw_samples, task_recipe, write


def test_synth_targets_are_the_heard_on_screen_objects(tiny_world):
    checked = excluded_silent = 0
    for raw in raw_samples(tiny_world / "val").values():
        meta = json.loads(raw["json"])
        masks = np.load(io.BytesIO(raw["gt.npz"]))["masks"]
        objects = meta["synthetic"]["objects"]
        for idx, t in enumerate(meta["frame_times"]):
            # independent route: the classes heard in the frame's second, by the event list
            heard = set(meta["synthetic"]["events"]["audio"][int(t)])
            ids = [i + 1 for i, o in enumerate(objects) if o["on_screen"]]
            want = np.isin(masks[idx], [i for i in ids if objects[i - 1]["class_id"] in heard])
            excluded_silent += any(
                (masks[idx] == i).any() and objects[i - 1]["class_id"] not in heard for i in ids
            )
            sample = {**raw, "__frame_indices__": [idx]}
            for size in (32, 16):
                got = synth_mask_targets(sample, meta, SimpleNamespace(frame_size=size))["mask"]
                assert got.dtype == torch.float32 and got.shape == (size, size)
                ref = pil_nearest(want.astype(np.uint8), size)
                np.testing.assert_array_equal(got.numpy(), ref)
            checked += int(want.any())
    assert checked > 0 and excluded_silent > 0  # both cases occur, so the test discriminates


def test_mask_transform_matches_pil_on_a_non_square_mask():
    rng = np.random.default_rng(0)
    mask = (rng.random((20, 30)) > 0.5).astype(np.uint8)
    got = mask_transform(torch.from_numpy(mask * 255), 12)
    np.testing.assert_array_equal(got.numpy(), pil_nearest(mask, 12))


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_png_targets_read_the_chosen_frames_mask():
    frame = io.BytesIO()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(frame, format="JPEG")
    masks = [np.zeros((20, 30), np.uint8) for _ in range(2)]
    masks[1][5:15, 10:25] = 255
    sample = {
        "__key__": "v0",
        "__frames__": [frame.getvalue()],
        "__frame_indices__": [1],
        "m00.png": _png(masks[0]),
        "m01.png": _png(masks[1]),
    }
    meta, opts = {"video_id": "vid"}, SimpleNamespace(frame_size=10)
    got = png_mask_targets(sample, meta, opts)
    np.testing.assert_array_equal(got["mask"].numpy(), pil_nearest(masks[1] // 255, 10))
    assert got["video_id"] == "vid"  # frames are grouped into videos by it
    with pytest.raises(ValueError, match="v0 .*no video_id"):
        png_mask_targets(sample, {}, opts)
    sample.pop("m01.png")
    with pytest.raises(ValueError, match="no m01.png member"):
        png_mask_targets(sample, meta, opts)
    sample["m01.png"] = _png(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="its frame"):
        png_mask_targets(sample, meta, opts)


# 48 px from a 2 x 2 grid: the four x2 stages give 32, resized to the frame
@pytest.mark.parametrize(("size", "grid"), [(32, 2), (224, 14), (48, 2)])
def test_head_output_is_one_logit_per_frame_pixel(size, grid):
    head = SegmentationHead(channels=(16, 8, 8, 8), in_dim=24, audio_dim=12)
    tokens = torch.randn(2, grid * grid, 24)
    logits = head(tokens, (grid, grid), torch.randn(2, 12), (size, size))
    assert logits.shape == (2, 1, size, size)


def test_audio_embedding_changes_the_mask():
    torch.manual_seed(0)
    head = SegmentationHead(channels=(16, 8), in_dim=24, audio_dim=12).eval()
    tokens = torch.randn(1, 4, 24)
    a = head(tokens, (2, 2), torch.randn(1, 12), (8, 8))
    b = head(tokens, (2, 2), torch.randn(1, 12), (8, 8))
    assert (a - b).abs().max() > 1e-3
    video = torch.randn(1, 3, 32, 32)
    batch = {"video": video, "audio": torch.randn(1, 1, 128, 192), "key": ["a"]}
    other = {**batch, "audio": torch.randn(1, 1, 128, 192)}
    av = SegmentationTask(SegmentationHead(channels=(8, 8, 8, 8)), backbone=BACKBONE).eval()
    assert (av(batch) - av(other)).abs().max() > 1e-4
    visual = SegmentationTask(
        SegmentationHead(channels=(8, 8, 8, 8)), backbone=BACKBONE, inputs="video"
    ).eval()
    assert torch.equal(visual(batch), visual(other))  # the visual-only baseline ignores audio


def test_bce_training_through_cli_logs_whole_set_miou_and_f(tiny_world, tmp_path):
    cfg = task_recipe("segmentation/synth.yaml", tiny_world, tmp_path / "run")
    cfg["trainer"].update(max_epochs=1, num_sanity_val_steps=0)  # the file's time budget
    cli = run_lightning_cli(["fit", "--config", str(write(cfg, tmp_path / "seg.yaml"))])
    assert cli.trainer.global_step > 0
    rows = logged_rows(tmp_path / "run")
    scores = [(float(r["val/mIoU"]), float(r["val/F"])) for r in rows if r.get("val/mIoU")]
    assert len(scores) == 1 and all(0.0 <= v <= 1.0 for pair in scores for v in pair)
    # the logged values: each clip's frame grouped by the batch's video_id (the synthetic world
    # has one clip per video), per-video scores averaged
    model = cli.model.eval()
    probs, masks, videos = [], [], []
    with torch.no_grad():
        for batch in cli.datamodule.val_dataloader():
            probs.append(torch.sigmoid(model(batch))[:, 0])
            masks.append(batch["mask"])
            videos += batch["video_id"]
    assert len(videos) == 8
    prob, mask = torch.cat(probs), torch.cat(masks)
    ious, fs = [], []
    for video in dict.fromkeys(videos):
        rows = [i for i, v in enumerate(videos) if v == video]
        ious.append(mask_iou(prob[rows], mask[rows]))
        fs.append(f_score(prob[rows], mask[rows]))
    assert scores[-1][0] == pytest.approx(np.mean(ious), abs=1e-5)
    assert scores[-1][1] == pytest.approx(np.mean(fs), abs=1e-5)
