"""Classification on the tiny world through the CLI: modes, LLRD, missing modalities, metrics."""

from __future__ import annotations

import pytest
import torch

from avpretrain.heads.classification import LinearHead
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.tasks.backbone import encoder_layers, layer_decay_groups
from avpretrain.tasks.classification import ClassificationTask

from .helpers import BACKBONE, logged_rows, task_recipe, tiny_encoders, write


def _classes(cfg, n):
    cfg["model"]["init_args"]["head"]["init_args"]["num_classes"] = n
    cfg["data"]["init_args"]["num_classes"] = n
    return cfg


def _metrics(run_dir):
    rows = logged_rows(run_dir)
    return [r for r in rows if r.get("val/acc")]


def test_linear_probe_through_cli_leaves_encoders_untouched(tiny_world, tmp_path):
    enc = tiny_encoders(tmp_path / "enc.pt")
    cfg = _classes(task_recipe("classification/synth_linear.yaml", tiny_world, tmp_path / "run"), 4)
    path = write(cfg, tmp_path / "linear.yaml")
    cli = run_lightning_cli(["fit", "--config", str(path), "--model.init_args.encoders", str(enc)])
    before = torch.load(enc, weights_only=True)["state_dict"]
    after = cli.model.backbone.state_dict()
    for name, value in before.items():
        assert torch.equal(after[name], value), name
    head = cli.model.head.layers[-1].weight
    assert head.abs().sum() > 0 and cli.trainer.global_step > 0
    accs = [float(r["val/acc"]) for r in _metrics(tmp_path / "run")]
    assert len(accs) == 2 and all(0.0 <= a <= 1.0 for a in accs)


def test_finetune_moves_encoders_with_layer_decay(tiny_world, tmp_path):
    cfg = task_recipe("classification/synth_finetune.yaml", tiny_world, tmp_path / "run")
    cfg = _classes(cfg, 4)
    cfg["trainer"]["max_epochs"] = 1
    path = write(cfg, tmp_path / "ft.yaml")
    cli = run_lightning_cli(["fit", "--config", str(path)])
    model = cli.model
    fresh = ClassificationTask(LinearHead(4), backbone=BACKBONE, mode="finetune")
    moved = [
        n
        for n, p in model.backbone.state_dict().items()
        if not torch.equal(p, fresh.backbone.state_dict()[n])
    ]
    assert any(n.startswith("audio_encoder.blocks.0") for n in moved)


def test_layer_decay_rates_by_depth():
    task = ClassificationTask(LinearHead(4), backbone=BACKBONE, mode="finetune", lr=1.0)
    groups = layer_decay_groups(task.backbone, lr=1.0, weight_decay=0.05, layer_decay=0.5)
    depth = len(encoder_layers(task.backbone))  # embeddings + 2 blocks = 3 layers
    assert depth == 3
    patch_weight = task.backbone.audio_encoder.patch_embed.proj.weight
    last_block = task.backbone.audio_encoder.blocks[-1].attn.qkv.weight
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert lr_of[id(patch_weight)] == pytest.approx(0.5**3)
    assert lr_of[id(last_block)] == pytest.approx(0.5**1)


def test_partial_mode_trains_only_the_last_layers():
    task = ClassificationTask(LinearHead(4), backbone=BACKBONE, mode="partial", trainable_blocks=1)
    b = task.backbone
    assert all(p.requires_grad for p in b.audio_encoder.blocks[-1].parameters())
    assert not any(p.requires_grad for p in b.audio_encoder.blocks[0].parameters())
    assert not b.audio_encoder.patch_embed.proj.weight.requires_grad


def test_missing_modality_is_a_mode_not_a_crash():
    task = ClassificationTask(LinearHead(3), backbone=BACKBONE, inputs="av")
    audio = torch.randn(2, 1, 128, 192)
    logits = task({"audio": audio, "key": ["a", "b"]})
    assert logits.shape == (2, 3)
    video_only = ClassificationTask(LinearHead(3), backbone=BACKBONE, inputs="video")
    with pytest.raises(ValueError, match="none of the inputs"):
        video_only({"audio": audio})


def test_epoch_scores_come_from_a_submodule_metric_that_is_reset():
    """The collector moves with the task (a submodule) and is empty again after an epoch."""
    task = ClassificationTask(LinearHead(3), backbone=BACKBONE).eval()
    assert any(m is task.metrics for m in task.modules())
    task.log = lambda *args, **kwargs: None  # no trainer here
    batch = {"audio": torch.randn(4, 1, 128, 192), "label": torch.tensor([0, 1, 2, 0])}
    with torch.no_grad():
        task._eval_step({**batch, "key": list("abcd")}, "val")
    scores = task.epoch_scores("val")
    assert set(scores) == {"acc"} and 0.0 <= scores["acc"] <= 1.0
    assert not task.metrics.update_called and task.epoch_scores("val") == {}
