"""av_quality: heads, MOS targets, the synthetic quality world, and the task through the CLI."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
import webdataset as wds

from avpretrain.av_quality.opinion import to_level
from avpretrain.data.synthetic.av_quality_world import (
    draw_severity,
    make_quality_sample,
    write_quality_world,
)
from avpretrain.data.synthetic.degrade import Severity, mos_model
from avpretrain.heads.av_quality import (
    MOSLevelHead,
    MOSRegressionHead,
    expected_score,
    temporal_pool,
)
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.tasks.av_quality import AVQualityTask, mos_level
from avpretrain.tasks.targets.av_quality import MOSTargets
from tests.conftest import TINY_WORLD

from .helpers import BACKBONE, ROOT, logged_rows, task_recipe, write

QUALITY_WORLD = replace(TINY_WORLD, clips=16, val_clips=8, num_frames=8)


@pytest.fixture(scope="module")
def quality_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality_world")
    write_quality_world(out, QUALITY_WORLD)
    return out


def _samples(directory):
    urls = sorted(str(p) for p in directory.glob("*.tar"))
    return list(wds.WebDataset(urls, shardshuffle=False, empty_check=False))


def test_level_head_score_is_expected_level_centre():
    torch.manual_seed(0)
    head = MOSLevelHead(in_dim=6, num_targets=2)
    x = torch.randn(3, 6)
    logits = head(x)
    assert logits.shape == (3, 2, 5)
    p = logits.softmax(-1)
    hand = sum(p[..., k] * (20 * k + 10) for k in range(5))  # centres 10, 30, 50, 70, 90
    assert torch.allclose(head.scores(logits), hand, atol=1e-5)
    # a certain prediction of level k scores its centre
    sure = torch.full((5, 5), -1e4).fill_diagonal_(1e4)
    assert torch.allclose(expected_score(sure), torch.tensor([10.0, 30, 50, 70, 90]))


def test_regression_head_scales_and_binds():
    head = MOSRegressionHead(activation="sigmoid")
    head.bind(4, 3)
    out = head(torch.randn(5, 4) * 100)
    assert out.shape == (5, 3) and bool(((out >= 0) & (out <= 1)).all())
    assert torch.equal(head.scores(out), 100 * out)
    with pytest.raises(ValueError, match="head built for"):
        head.bind(8, 3)
    with pytest.raises(ValueError, match="activation"):
        MOSRegressionHead(activation="tanh")


def test_mos_level_matches_opinion_to_level():
    mos = torch.tensor([-5.0, 0.0, 19.99, 20.0, 59.5, 80.0, 99.9, 100.0, 130.0])
    assert mos_level(mos).tolist() == to_level(mos.numpy()).tolist()


def test_mos_targets_rescale_and_errors():
    meta = {"annotations": {"mos": {"overall": 3.0, "video": 5.0, "audio": 1.0}}}
    out = MOSTargets(keys=["audio", "overall", "video"], scale=(1, 5))({"__key__": "k"}, meta, None)
    assert out["mos"].tolist() == [0.0, 50.0, 100.0]  # 100 * (r - 1) / 4
    with pytest.raises(ValueError, match="'k'.*mos.video"):
        MOSTargets(keys=["video"])({"__key__": "k"}, {"annotations": {"mos": {}}}, None)
    with pytest.raises(ValueError, match="outside the configured scale"):
        MOSTargets(keys=["overall"], scale=(1, 5))(
            {"__key__": "k"}, {"annotations": {"mos": {"overall": 50}}}, None
        )


def test_quality_world_stores_mos_model_of_its_severities(quality_world):
    samples = _samples(quality_world / "val")
    assert len(samples) == QUALITY_WORLD.val_clips
    overall = []
    for i, sample in enumerate(samples):
        ann = json.loads(sample["json"])["annotations"]
        severity = Severity(**ann["severity"])
        assert severity == draw_severity(QUALITY_WORLD, "val", i)
        expected = mos_model(severity)
        assert ann["mos"] == pytest.approx(expected, abs=1e-9)
        overall.append(expected["overall"])
    assert np.ptp(overall) > 10  # severities vary from clip to clip


def test_more_severe_clip_scores_lower_and_looks_worse():
    mild = Severity(blur=0.2, jpeg=0.2, audio_noise=0.2)
    harsh = Severity(**{**asdict(mild), "blur": 0.8, "jpeg": 0.8, "audio_noise": 0.9})
    clean = make_quality_sample(QUALITY_WORLD, "val", 0, Severity())
    worse = []
    for severity in (mild, harsh):
        sample = make_quality_sample(QUALITY_WORLD, "val", 0, severity)
        mos = json.loads(sample["json"])["annotations"]["mos"]
        worse.append((mos["overall"], mos["video"], mos["audio"], len(sample["f00.jpg"])))
    assert all(h < m for m, h in zip(worse[0][:3], worse[1][:3], strict=True))
    # blur and heavy JPEG leave less detail: the stored JPEG frame shrinks
    assert worse[1][3] < worse[0][3] < len(clean["f00.jpg"])


def _val_rows(run_dir, target="overall"):
    rows = logged_rows(run_dir)
    return [r for r in rows if r.get(f"val/{target}/SRCC")]


def test_regression_through_cli_logs_correlations(quality_world, tmp_path):
    cfg = task_recipe("av_quality/synth.yaml", quality_world, tmp_path / "run")
    cli = run_lightning_cli(["fit", "--config", str(write(cfg, tmp_path / "q.yaml"))])
    assert cli.trainer.global_step > 0
    for target in ("overall", "video", "audio"):
        rows = _val_rows(tmp_path / "run", target)
        assert len(rows) == 2
        for row in rows:
            for metric in ("SRCC", "PLCC", "KRCC", "PLCC_logistic"):
                assert -1.0 <= float(row[f"val/{target}/{metric}"]) <= 1.0
            assert float(row[f"val/{target}/RMSE_logistic"]) >= 0.0


def test_level_head_video_only_through_cli(quality_world, tmp_path):
    cfg = task_recipe(
        "av_quality/synth.yaml", quality_world, tmp_path / "run", inputs="video", targets=["video"]
    )
    cfg["trainer"]["max_epochs"] = 1
    cfg["model"]["init_args"]["head"] = {"class_path": "avpretrain.heads.av_quality.MOSLevelHead"}
    cfg["data"]["init_args"]["targets"]["init_args"]["keys"] = ["video"]
    cli = run_lightning_cli(["fit", "--config", str(write(cfg, tmp_path / "q.yaml"))])
    assert cli.model.head.layers[-1].out_features == 5
    (row,) = _val_rows(tmp_path / "run", "video")
    assert -1.0 <= float(row["val/video/SRCC"]) <= 1.0


def test_mismatched_target_width_is_a_clear_error():
    task = AVQualityTask(MOSRegressionHead(), targets=["overall", "video"], backbone=BACKBONE)
    batch = {"video": torch.randn(2, 3, 32, 32), "mos": torch.rand(2, 3), "key": ["a", "b"]}
    with pytest.raises(ValueError, match="same keys"):
        task.training_step(batch, 0)


def test_temporal_pool_by_hand():
    steps = torch.tensor([[[0.0, 1.0], [2.0, 1.0], [2.0, 4.0]]])  # [1, 3, 2]
    assert torch.allclose(temporal_pool(steps), torch.tensor([[4 / 3, 2.0]]))
    # mean, then mean |x_t - x_(t-1)|: (|2| + 0) / 2, (0 + |3|) / 2
    pooled = temporal_pool(steps, "mean_diff")
    assert torch.allclose(pooled, torch.tensor([[4 / 3, 2.0, 1.0, 1.5]]))
    assert temporal_pool(steps[:, :1], "mean_diff").tolist() == [[0.0, 1.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="temporal pooling"):
        temporal_pool(steps, "max")


def test_held_frames_show_no_change_and_tubelets_pool_per_step():
    task = AVQualityTask(
        MOSRegressionHead(), backbone=BACKBONE, inputs="video", temporal="mean_diff"
    )
    torch.manual_seed(0)
    fluent = torch.randn(2, 3, 4, 32, 32)
    held = fluent[:, :, [0, 0, 2, 2]]  # a stutter holding every frame twice
    width = task.backbone.video_encoder.embed_dim
    assert task.feature_dim() == 2 * width
    steps = task.video_steps(fluent)
    assert steps.shape == (2, 4, width)
    frame2 = task.backbone.encode(video=fluent[:, :, 2])["video_embedding"]
    assert torch.allclose(steps[:, 2], frame2, atol=1e-5)  # each frame on its own
    change = task.pooled_features({"video": held})[:, width:]
    # held frames change nothing: half the steps are zero, so the mean change halves or less
    assert (change < task.pooled_features({"video": fluent})[:, width:]).float().mean() > 0.9
    clip = AVQualityTask(
        MOSRegressionHead(), backbone={**BACKBONE, "num_frames": 4, "tubelet": 2}, inputs="av"
    )
    assert clip.video_steps(fluent).shape == (2, 2, width)  # 4 frames / tubelet 2
    batch = {"video": fluent, "audio": torch.randn(2, 1, 128, 192)}
    assert clip.pooled_features(batch).shape == (2, clip.feature_dim()) == (2, 2 * width)


@pytest.mark.parametrize("recipe", sorted((ROOT / "tasks" / "av_quality").glob("*.yaml")), ids=str)
def test_every_recipe_parses(recipe, capsys):
    with pytest.raises(SystemExit) as exc:
        run_lightning_cli(["fit", "--config", str(recipe), "--print_config"])
    assert exc.value.code == 0
    assert "frame_sampling: dense" in capsys.readouterr().out


def test_missing_modality_keeps_the_feature_width():
    task = AVQualityTask(MOSRegressionHead(), backbone=BACKBONE, inputs="av", temporal="mean_diff")
    audio_only = task.pooled_features({"audio": torch.randn(2, 1, 128, 192)})
    video_only = task.pooled_features({"video": torch.randn(2, 3, 2, 32, 32)})
    width = task.backbone.audio_encoder.embed_dim
    assert audio_only.shape == video_only.shape == (2, task.feature_dim())
    assert not audio_only[:, width:].any() and not video_only[:, :width].any()
