"""Retrieval on the tiny world through the CLI, the whole-set metrics, losses and DDP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avpretrain.heads.retrieval import RetrievalHead
from avpretrain.heads.text import TextEncoder
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.tasks.retrieval import RetrievalTask
from avpretrain.tasks.targets.retrieval import caption_targets

from .helpers import (
    BACKBONE,
    ROOT,
    fit_in_subprocess,
    logged_rows,
    task_recipe,
    tiny_encoders,
    write,
)

DIRECTIONS = ("a2v", "v2a", "t2av", "av2t")
RECALLS = ("R1", "R5", "R10")


def _task(**head) -> RetrievalTask:
    text = TextEncoder(width=32, depth=1, num_heads=4, max_length=32)
    return RetrievalTask(RetrievalHead(embed_dim=16, text_encoder=text, **head), backbone=BACKBONE)


def test_linear_probe_through_cli_logs_every_metric(tiny_world, tmp_path):
    enc = tiny_encoders(tmp_path / "enc.pt")
    cfg = task_recipe("retrieval/synth.yaml", tiny_world, tmp_path / "run")
    head = cfg["model"]["init_args"]["head"]["init_args"]
    head["embed_dim"] = 16
    head["text_encoder"]["init_args"] = {"width": 32, "depth": 1, "num_heads": 4, "max_length": 96}
    path = write(cfg, tmp_path / "retrieval.yaml")
    cli = run_lightning_cli(["fit", "--config", str(path), "--model.init_args.encoders", str(enc)])
    before = torch.load(enc, weights_only=True)["state_dict"]
    after = cli.model.backbone.state_dict()
    assert all(torch.equal(after[n], v) for n, v in before.items())
    torch.manual_seed(0)
    fresh = TextEncoder(width=32, depth=1, num_heads=4, max_length=96)
    trained = cli.model.head.text_encoder.token_embed.weight.detach()
    assert not torch.allclose(trained, fresh.token_embed.weight)  # the text tower trained
    rows = logged_rows(tmp_path / "run")
    val = [r for r in rows if r.get("val/a2v_R1")]
    assert len(val) == 2
    for row in val:
        for d in DIRECTIONS:
            for k in RECALLS:
                assert 0.0 <= float(row[f"val/{d}_{k}"]) <= 100.0
            assert 1.0 <= float(row[f"val/{d}_MedianR"]) <= 8.0  # 8 validation clips
        assert float(row["val/gallery_size"]) == 8.0  # the whole validation set
        assert float(row["val/a2v_R10"]) == 100.0  # a gallery of 8: everything is in the top 10
    assert any(r.get("train/loss_text") for r in rows)
    # zero-shot: the frozen encoders' mean patch tokens by cosine, the same after every epoch,
    # recomputed here with numpy (no ties among 8 random-feature cosines)
    audio, video = [], []
    with torch.no_grad():
        for batch in cli.datamodule.val_dataloader():
            audio.append(cli.model.backbone.encode(audio=batch["audio"])["audio_tokens"][:, 1:])
            video.append(cli.model.backbone.encode(video=batch["video"])["video_tokens"][:, 1:])
    a = F.normalize(torch.cat(audio).mean(1), dim=1).numpy()
    v = F.normalize(torch.cat(video).mean(1), dim=1).numpy()
    sim = a @ v.T
    for name, m in (("zs_a2v", sim), ("zs_v2a", sim.T)):
        ranks = (m > np.diag(m)[:, None]).sum(1)  # 0-based rank of each clip's own pair
        for row in val:
            assert float(row[f"val/{name}_R1"]) == pytest.approx(100 * np.mean(ranks == 0))
            assert float(row[f"val/{name}_MeanR"]) == pytest.approx(ranks.mean() + 1)


def _epoch_scores(**emb) -> dict[str, float]:
    """The task's epoch scores after one evaluation batch of these embeddings."""
    task = _task()
    task.audio_video.update(emb["audio"], emb["video"])
    if "text" in emb:
        task.text_av.update(emb["text"], emb["av"])
    return task.epoch_scores("val")


def test_zero_shot_needs_equal_encoder_widths():
    unequal = {**BACKBONE, "video_encoder": "small"}
    with pytest.raises(ValueError, match="widths \\(64, 384\\) differ"):
        RetrievalTask(RetrievalHead(embed_dim=16), backbone=unequal, zero_shot=True)
    assert not RetrievalTask(RetrievalHead(embed_dim=16), backbone=unequal).zero_shot  # auto
    assert RetrievalTask(RetrievalHead(embed_dim=16), backbone=BACKBONE).zero_shot


def test_perfect_embeddings_give_r1_100():
    emb = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    scores = _epoch_scores(audio=emb, video=emb * 3, av=emb, text=emb)
    assert scores["gallery_size"] == 5.0
    for d in DIRECTIONS:
        assert scores[f"{d}_R1"] == 100.0 and scores[f"{d}_MedianR"] == 1.0


def test_scores_by_hand():
    # audio 0 -> videos: cosines 0.6, 0.8, -1: its truth ranks second; audio 1, 2 rank first
    audio = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    video = np.array([[0.6, -0.8], [0.8, 0.6], [-1.0, 0.0]])
    scores = _epoch_scores(audio=audio, video=video)
    assert scores["a2v_R1"] == pytest.approx(200 / 3)
    assert scores["a2v_MeanR"] == pytest.approx(4 / 3)
    assert "t2av_R1" not in scores
    # video 1 -> audios: cosines 0.8, 0.6, -0.8: its truth ranks second; videos 0, 2 rank first
    assert scores["v2a_R1"] == pytest.approx(200 / 3)


def test_losses_are_symmetric_infonce_with_the_head_temperature():
    task = _task(temperature=0.1, learn_temperature=False)
    assert not task.head.logit_scale.requires_grad
    g = torch.Generator().manual_seed(0)
    emb = {k: F.normalize(torch.randn(4, 16, generator=g), dim=-1) for k in ("audio", "video")}
    emb.update(av=emb["audio"], text=emb["video"].flip(0))
    logits = emb["audio"] @ emb["video"].T / 0.1
    target = torch.arange(4)
    want = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    losses = task._losses(emb)
    torch.testing.assert_close(losses["loss_av"], want)
    assert losses["loss"] == pytest.approx(float(losses["loss_av"] + losses["loss_text"]))


def test_forward_shapes_and_missing_caption():
    task = _task().eval()
    batch = {
        "audio": torch.randn(2, 1, 128, 192),
        "video": torch.randn(2, 3, 32, 32),
        "caption": ["a bell", "a drum"],
        "key": ["a", "b"],
    }
    out = task(batch)
    assert set(out) == {"audio", "video", "av", "text", "audio_backbone", "video_backbone"}
    assert all(out[k].shape == (2, 16) for k in ("audio", "video", "av", "text"))
    width = task.backbone.audio_encoder.embed_dim
    assert out["audio_backbone"].shape == out["video_backbone"].shape == (2, width)
    torch.testing.assert_close(out["av"].norm(dim=-1), torch.ones(2))
    del batch["caption"]
    with pytest.raises(ValueError, match="caption"):
        task(batch)
    with pytest.raises(ValueError, match="inputs='av'"):
        RetrievalTask(RetrievalHead(), backbone=BACKBONE, inputs="audio")


@pytest.mark.parametrize("with_text", [True, False])
def test_every_trainable_parameter_gets_a_gradient(with_text):
    # DDP stops on a trainable parameter the loss does not reach
    text = TextEncoder(width=32, depth=1, num_heads=4, max_length=32) if with_text else None
    task = RetrievalTask(RetrievalHead(embed_dim=16, text_encoder=text), backbone=BACKBONE)
    batch = {"audio": torch.randn(3, 1, 128, 192), "video": torch.randn(3, 3, 32, 32)}
    batch["caption"] = ["a bell", "a drum", "a horn"]
    emb = task(batch)
    assert ("text" in emb) == ("av" in emb) == with_text
    task._losses(emb)["loss"].backward()
    trainable = [(n, p) for n, p in task.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("head.") for n, _ in trainable)  # linear probe
    assert [n for n, p in trainable if p.grad is None] == []


def test_caption_targets():
    assert caption_targets({"__key__": "k"}, {"caption": "A bell."}, None) == {"caption": "A bell."}
    with pytest.raises(ValueError, match="'k' has no caption"):
        caption_targets({"__key__": "k"}, {"caption": None}, None)


@pytest.mark.parametrize("recipe", ["synth.yaml", "vggsound.yaml"])
def test_recipes_parse(recipe, capsys):
    with pytest.raises(SystemExit) as exc:
        run_lightning_cli(
            ["fit", "--config", str(ROOT / "tasks/retrieval" / recipe), "--print_config"]
        )
    assert exc.value.code == 0
    printed = capsys.readouterr().out
    assert "class_path: avpretrain.heads.text.TextEncoder" in printed
    assert "avpretrain.tasks.targets.retrieval.caption_targets" in printed


@pytest.mark.slow
def test_two_process_ddp_ranks_the_whole_validation_set(tiny_world, tmp_path):
    cfg = task_recipe("retrieval/synth.yaml", tiny_world, tmp_path / "run")
    cfg["trainer"].update(strategy="ddp", devices=2, accelerator="cpu", max_epochs=1)
    head = cfg["model"]["init_args"]["head"]["init_args"]
    head["text_encoder"]["init_args"] = {"width": 32, "depth": 1, "num_heads": 4, "max_length": 96}
    path = write(cfg, tmp_path / "ddp.yaml")
    rows = fit_in_subprocess(path, tmp_path / "run")
    val = [r for r in rows if r.get("val/gallery_size")]
    # each rank validates 4 of the 8 clips; the metrics rank all 8
    assert [float(r["val/gallery_size"]) for r in val] == [8.0]
    assert 1.0 <= float(val[0]["val/t2av_MedianR"]) <= 8.0
