"""The own embedder's caption score lives in the retrieval head's space: checked against the task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from avpretrain.cli import main as avpretrain_main
from avpretrain.curation.embedders import AVMAEEmbedder
from avpretrain.curation.text_tower import (
    TextTower,
    load_text_tower,
    save_text_tower,
    tower_from_checkpoint,
)
from avpretrain.heads.retrieval import RetrievalHead
from avpretrain.heads.text import TextEncoder
from avpretrain.models import AVMAE
from avpretrain.models.encoder_file import load_encoders, save_encoders
from avpretrain.tasks.retrieval import RetrievalTask

HEAD = {
    "class_path": "avpretrain.heads.retrieval.RetrievalHead",
    "init_args": {
        "embed_dim": 24,
        "text_encoder": {
            "class_path": "avpretrain.heads.text.TextEncoder",
            "init_args": {"width": 32, "depth": 1, "num_heads": 2, "max_length": 48},
        },
    },
}


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = AVMAE("tiny", "tiny_decoder", audio_shape=(128, 192), video_size=32)
    return save_encoders(model, tmp_path_factory.mktemp("enc") / "enc.pt")


@pytest.fixture(scope="module")
def task(encoders: Path) -> RetrievalTask:
    torch.manual_seed(1)
    text = TextEncoder(width=32, depth=1, num_heads=2, max_length=48)
    return RetrievalTask(head=RetrievalHead(24, text), encoders=str(encoders)).eval()


def _clips() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    torch.manual_seed(2)
    waves = torch.randn(3, 16000)
    frames = torch.randint(0, 256, (3, 3, 40, 48), dtype=torch.uint8)
    return waves, frames, ["a dog barks", "rain on a roof", "a bell rings twice"]


def test_own_embedder_matches_the_retrieval_task(task: RetrievalTask, encoders: Path) -> None:
    emb = AVMAEEmbedder(load_encoders(encoders), text_tower=TextTower.from_task(task))
    assert emb.text_backbone is emb.model  # linear probe: same weights, encoded once
    waves, frames, captions = _clips()
    batch = {"audio": emb._spec(waves, 16000), "video": emb._video(frames), "caption": captions}
    with torch.no_grad():
        ref = task(batch)  # the task's own text and fused audio-visual embeddings
    torch.testing.assert_close(emb.embed_text(captions), ref["text"])
    torch.testing.assert_close(emb.embed_audio_visual(waves, 16000, frames), ref["av"])
    assert emb.embed_text(captions).shape == (3, 24)
    assert {"text", "audio_visual"} <= emb.modalities


def test_retrieval_space_matches_the_task_audio_and_video(
    task: RetrievalTask, encoders: Path
) -> None:
    tower = TextTower.from_task(task)
    emb = AVMAEEmbedder(load_encoders(encoders), text_tower=tower, av_space="retrieval")
    pooled = AVMAEEmbedder(load_encoders(encoders), text_tower=tower)
    waves, frames, captions = _clips()
    batch = {"audio": emb._spec(waves, 16000), "video": emb._video(frames), "caption": captions}
    with torch.no_grad():
        ref = task(batch)  # the task's audio and video embeddings, trained against each other
    torch.testing.assert_close(emb.embed_audio(waves, 16000), ref["audio"])
    torch.testing.assert_close(emb.embed_frames(frames), ref["video"])
    assert emb.embed_audio(waves, 16000).shape == (3, 24)  # the head's width, not the encoder's
    assert pooled.embed_audio(waves, 16000).shape == (3, 64)
    with pytest.raises(ValueError, match="needs a text tower"):
        AVMAEEmbedder(load_encoders(encoders), av_space="retrieval")
    with pytest.raises(ValueError, match="av_space must be one of"):
        AVMAEEmbedder(load_encoders(encoders), text_tower=tower, av_space="fused")


def test_tower_file_and_checkpoint_round_trip(
    task: RetrievalTask, encoders: Path, tmp_path: Path
) -> None:
    waves, frames, captions = _clips()
    reference = AVMAEEmbedder(
        load_encoders(encoders), text_tower=TextTower.from_task(task), av_space="retrieval"
    )
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)}, ckpt)
    config = tmp_path / "fit.yaml"
    config.write_text(yaml.safe_dump({"model": {"init_args": {"head": HEAD}}}))
    tower_file = save_text_tower(tower_from_checkpoint(ckpt, config), tmp_path / "tower.pt")
    for tower in (load_text_tower(tower_file), load_text_tower(ckpt, config)):
        emb = AVMAEEmbedder(load_encoders(encoders), text_tower=tower, av_space="retrieval")
        torch.testing.assert_close(emb.embed_text(captions), reference.embed_text(captions))
        torch.testing.assert_close(
            emb.embed_audio_visual(waves, 16000, frames),
            reference.embed_audio_visual(waves, 16000, frames),
        )
        torch.testing.assert_close(
            emb.embed_audio(waves, 16000), reference.embed_audio(waves, 16000)
        )
        torch.testing.assert_close(emb.embed_frames(frames), reference.embed_frames(frames))
    payload = torch.load(tower_file, weights_only=True)
    torch.save({**payload, "version": 1}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="old.pt: text tower file version 1"):
        load_text_tower(tmp_path / "old.pt")
    with pytest.raises(ValueError, match="text-config"):
        load_text_tower(ckpt)
    with pytest.raises(ValueError, match="enc.pt: not a text tower"):
        load_text_tower(encoders)


def test_tower_on_other_encoders(task: RetrievalTask, tmp_path: Path) -> None:
    tower = TextTower.from_task(task)
    torch.manual_seed(3)
    other = AVMAE("tiny", "tiny_decoder", audio_shape=(128, 192), video_size=32)
    emb = AVMAEEmbedder(other, text_tower=tower)
    assert emb.text_backbone is tower.backbone  # the fused embedding uses the head's backbone
    smaller = AVMAE("tiny", "tiny_decoder", audio_shape=(128, 96), video_size=32)
    with pytest.raises(ValueError, match="audio_shape"):
        AVMAEEmbedder(smaller, text_tower=tower)
    with pytest.raises(NotImplementedError, match="text tower"):
        AVMAEEmbedder(other).embed_text(["a dog"])


def test_curate_scores_captions_with_the_tower(
    task: RetrievalTask, encoders: Path, tiny_world_corrupt: Path, tmp_path: Path
) -> None:
    tower = save_text_tower(TextTower.from_task(task), tmp_path / "tower.pt")
    out = tmp_path / "curated"
    args = [str(tiny_world_corrupt / "val"), "--out", str(out), "--encoders", str(encoders)]
    args += ["--text-encoder", str(tower), "--thresholds", "text_av=0.5", "--quantile"]
    assert avpretrain_main(["curate", *args, "--batch-size", "8"]) == 0
    report = json.loads((out / "report.json").read_text())
    language = {s["name"]: s for s in report["stages"]}["language"]
    assert language["active"] and set(language["thresholds"]) == {"text_av"}
    assert (language["entered"], language["kept"]) == (8, 4)  # the median splits 8 clips
    clips = json.loads((out / "scores/synth-000000.tar.json").read_text())["clips"]
    assert all(0.0 <= c["scores"]["text_av"] <= 1.0 for c in clips)
    assert all(c["scores"]["text_audio"] is None for c in clips)  # no CLAP given
    retrieval = [
        "--encoders",
        str(encoders),
        "--text-encoder",
        str(tower),
        "--av-space",
        "retrieval",
    ]
    assert (
        avpretrain_main(
            ["curate", str(tiny_world_corrupt / "val"), "--out", str(tmp_path / "r"), *retrieval]
        )
        == 0
    )
    spaced = json.loads((tmp_path / "r/scores/synth-000000.tar.json").read_text())
    assert (
        spaced["embedders"]["audio_visual"]
        != json.loads((out / "scores/synth-000000.tar.json").read_text())["embedders"][
            "audio_visual"
        ]
    )  # a cache of the other space is not reused
    no_tower = ["--encoders", str(encoders), "--av-space", "retrieval"]
    assert (
        avpretrain_main(
            ["curate", str(tiny_world_corrupt / "val"), "--out", str(tmp_path / "n"), *no_tower]
        )
        == 2
    )
    bad = ["--text-encoder", str(tower), "--embedder", "none"]
    assert (
        avpretrain_main(["curate", str(tiny_world_corrupt / "train"), "--out", str(out), *bad]) == 2
    )
