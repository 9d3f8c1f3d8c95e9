"""The one weight-decay rule: no token, position table, bias or norm parameter is decayed in
pretraining or in any fine-tuning mode, and every weight matrix that trains is."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from avpretrain.heads.classification import LinearHead
from avpretrain.models import AVMAE
from avpretrain.pretrain import AVMAEPretrain
from avpretrain.tasks.classification import ClassificationTask
from avpretrain.training.param_groups import param_groups

from ..tasks.helpers import BACKBONE

FUSED = {**BACKBONE, "fusion_layers": 1}  # fusion adds the modality tokens


def _expect_exempt(name: str, param: torch.Tensor) -> bool:
    """Written from the parameter names alone, independently of the rule's code."""
    parts = name.split(".")
    return (
        param.ndim <= 1
        or parts[-1] == "bias"
        or parts[-1] in ("cls_token", "mask_token", "audio_modality_token", "video_modality_token")
        or parts[-1] in ("pos_embed", "decoder_pos_embed")
        or any("norm" in part for part in parts[:-1])
    )


def _decay_by_param(module: nn.Module, groups: list[dict]) -> dict[str, float]:
    """Weight decay of each parameter name of ``module`` in ``groups`` (each at most once)."""
    by_id: dict[int, float] = {}
    for group in groups:
        for p in group["params"]:
            assert id(p) not in by_id, "a parameter is in two groups"
            by_id[id(p)] = group["weight_decay"]
    return {n: by_id[id(p)] for n, p in module.named_parameters() if id(p) in by_id}


def _check(module: nn.Module, decay: dict[str, float], weight_decay: float) -> int:
    """Every trainable parameter is grouped, exempt ones at 0, the rest at ``weight_decay``."""
    decayed = 0
    for name, p in module.named_parameters():
        if not p.requires_grad:
            assert name not in decay, name
            continue
        want = 0.0 if _expect_exempt(name, p) else weight_decay
        assert decay[name] == want, (name, tuple(p.shape), decay[name])
        decayed += want > 0
    return decayed


def test_pretraining_decays_only_weight_matrices():
    module = AVMAEPretrain(AVMAE(**FUSED), lr=1e-3, weight_decay=0.05)
    module._trainer = SimpleNamespace(estimated_stepping_batches=10)
    groups = module.configure_optimizers()["optimizer"].param_groups
    decay = _decay_by_param(module.model, groups)
    assert decay["audio_modality_token"] == 0.0 and decay["audio_encoder.cls_token"] == 0.0
    assert decay["video_decoder.mask_token"] == 0.0
    assert decay["fusion_norm.weight"] == 0.0 and decay["fusion.0.attn.qkv.bias"] == 0.0
    assert _check(module.model, decay, 0.05) > 0


@pytest.mark.parametrize(
    ("mode", "layer_decay"), [("linear_probe", 1.0), ("partial", 1.0), ("finetune", 0.75)]
)
def test_every_finetuning_mode_uses_the_same_rule(mode, layer_decay):
    task = ClassificationTask(
        LinearHead(4), backbone=FUSED, mode=mode, layer_decay=layer_decay, weight_decay=0.1
    )
    task._trainer = SimpleNamespace(estimated_stepping_batches=10)
    groups = task.configure_optimizers()["optimizer"].param_groups
    decay = _decay_by_param(task, groups)
    assert decay["head.layers.2.weight"] == 0.1  # the head's linear layer
    assert decay["head.layers.0.weight"] == 0.0  # its LayerNorm
    if mode == "finetune":
        assert decay["backbone.audio_encoder.cls_token"] == 0.0
        assert decay["backbone.video_modality_token"] == 0.0
        assert decay["backbone.audio_encoder.blocks.0.attn.qkv.weight"] == 0.1
    if mode == "partial":
        assert decay["backbone.fusion_norm.weight"] == 0.0
        assert decay["backbone.fusion.0.mlp.fc1.weight"] == 0.1
    assert _check(task, decay, 0.1) >= 1


class _Toy(nn.Module):
    """Layers the backbone does not have: GroupNorm, BatchNorm, an embedding, a bare table."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.group_norm = nn.GroupNorm(2, 8)
        self.batch_norm = nn.BatchNorm2d(8)
        self.emb = nn.Embedding(10, 8)
        self.table = nn.Parameter(torch.zeros(4, 8))
        self.role_embed = nn.Parameter(torch.zeros(2, 8))
        self.proj = nn.Linear(8, 8)


def test_rule_on_other_layers():
    toy = _Toy()
    groups = param_groups(toy, 0.3, lr=0.5)
    assert all(g["lr"] == 0.5 for g in groups)
    decay = _decay_by_param(toy, groups)
    assert decay["role_embed"] == 0.0 and decay["emb.weight"] == 0.0
    assert decay["conv.weight"] == decay["proj.weight"] == 0.3
    # ``table`` ends in neither "token" nor "embed": a bare matrix, decayed
    assert decay.pop("table") == 0.3
    assert {n for n, d in decay.items() if d > 0} == {"conv.weight", "proj.weight"}
