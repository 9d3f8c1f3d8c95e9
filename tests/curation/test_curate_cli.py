"""``avpretrain curate`` end to end on the tiny corrupted world with a tiny random AV-MAE."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from avpretrain.cli import main as avpretrain_main
from avpretrain.data.shards import read_index, read_raw_samples
from avpretrain.models import AVMAE
from avpretrain.models.encoder_file import save_encoders


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = AVMAE("tiny", "tiny_decoder", audio_shape=(128, 192), video_size=32)
    return save_encoders(model, tmp_path_factory.mktemp("enc") / "enc.pt")


def _curate(world: Path, out: Path, encoders: Path, *extra: str) -> int:
    args = [str(world / "train"), "--out", str(out), "--encoders", str(encoders)]
    return avpretrain_main(["curate", *args, "--batch-size", "8", *extra])


def test_curate_writes_filtered_shards_and_report(
    tiny_world_corrupt: Path, encoders: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "curated"
    th = "audio_visual=0.25,temporal=0.25,text_audio=0.5"
    assert _curate(tiny_world_corrupt, out, encoders, "--thresholds", th, "--quantile") == 0
    report = json.loads((out / "report.json").read_text())
    index = read_index(out)
    assert report["total"] == 24 and index["total"] == report["kept"]
    # each quantile stage drops about a quarter of the clips it sees: 24 -> 18 -> 13
    stages = {s["name"]: s for s in report["stages"]}
    assert (stages["instance"]["kept"], stages["temporal"]["kept"]) == (18, 13)
    assert stages["temporal"]["retained"] == pytest.approx(13 / 24)
    assert not stages["language"]["active"] and "text_audio" in caplog.text  # no CLAP given
    assert report["kept"] == 13
    assert sum(report["categories"]["before"].values()) == 24
    # the world's ground truth, 3 clips per corruption kind, is counted before and after
    bad = report["corruptions"]
    assert bad["before"] == {"clean": 15, "swap_audio": 3, "shift_audio": 3, "swap_caption": 3}
    assert sum(bad["after"].values()) == 13
    for name in ("report.md", "hist_audio_visual.png", "hist_temporal.png"):
        assert (out / name).stat().st_size > 0
    assert "| instance | yes | 24 | 18 |" in (out / "report.md").read_text()

    source = {
        s["__key__"]: s for s in read_raw_samples(tiny_world_corrupt / "train/synth-000000.tar")
    }
    kept = [s for shard in index["shards"] for s in read_raw_samples(shard["url"])]
    assert len(kept) == 13
    for sample in kept:
        original = source.get(sample["__key__"])
        if original is None:
            continue
        assert set(sample) == set(original)  # same members: frames, flac, json, gt.npz
        assert sample["flac"] == original["flac"]
        meta, before = json.loads(sample["json"]), json.loads(original["json"])
        scores = meta.pop("scores")
        assert meta == {k: v for k, v in before.items() if k != "scores"}
        assert 0.0 <= scores["audio_visual"] <= 1.0 and 0.0 <= scores["temporal"] <= 1.0
        assert scores["text_audio"] is None and scores["text_visual"] is None


def test_curate_resumes_from_cached_scores(
    tiny_world_corrupt: Path, encoders: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "curated"
    assert _curate(tiny_world_corrupt, out, encoders, "--stages", "instance") == 0
    cache = sorted((out / "scores").glob("*.json"))
    assert len(cache) == 3
    stamps = [p.stat().st_mtime_ns for p in cache]
    first = json.loads(cache[0].read_text())["clips"]
    # a stricter rerun: nothing rescored, fewer clips kept, same scores
    caplog.clear()
    caplog.set_level(logging.INFO, logger="avpretrain.curation")
    assert (
        _curate(tiny_world_corrupt, out, encoders, "--thresholds", "audio_visual=0.5", "--quantile")
        == 0
    )
    assert [p.stat().st_mtime_ns for p in cache] == stamps
    assert caplog.text.count("cached, not rescored") == 3
    assert read_index(out)["total"] == json.loads((out / "report.json").read_text())["kept"] == 12
    assert json.loads(cache[0].read_text())["clips"] == first


def test_curate_rejects_bad_arguments(tiny_world_corrupt: Path, tmp_path: Path) -> None:
    train = str(tiny_world_corrupt / "train")
    assert avpretrain_main(["curate", train, "--out", str(tmp_path / "o")]) == 2  # no --encoders
    assert avpretrain_main(["curate", train, "--out", train, "--embedder", "none"]) == 2
    assert avpretrain_main(["curate", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    zero = [
        "curate",
        train,
        "--out",
        str(tmp_path / "o"),
        "--embedder",
        "none",
        "--batch-size",
        "0",
    ]
    assert avpretrain_main(zero) == 2


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_curate_language_stage_with_clap_and_clip(
    tiny_world_corrupt: Path, encoders: Path, tmp_path: Path
) -> None:
    pytest.importorskip("transformers")
    from tests.curation.hf_models import tiny_clap, tiny_clip

    (tmp_path / "clap").mkdir()
    (tmp_path / "clip").mkdir()
    clap, clip = tiny_clap(tmp_path / "clap"), tiny_clip(tmp_path / "clip")
    out = tmp_path / "curated"
    th = "text_audio=0.25,text_visual=0.25"
    extra = ["--clap", str(clap), "--clip", str(clip), "--thresholds", th, "--quantile"]
    assert _curate(tiny_world_corrupt, out, encoders, *extra) == 0
    stages = {s["name"]: s for s in json.loads((out / "report.json").read_text())["stages"]}
    language = stages["language"]
    assert language["active"] and language["entered"] == 24 and language["skipped"] == 0
    assert set(language["thresholds"]) == {"text_audio", "text_visual"}
    assert 24 * 0.5 <= language["kept"] < 24 * 0.75 + 1  # two quarter cuts, partly overlapping
    kept = [s for shard in read_index(out)["shards"] for s in read_raw_samples(shard["url"])]
    assert len(kept) == language["kept"]
    for sample in kept:
        scores = json.loads(sample["json"])["scores"]
        assert all(0.0 <= scores[k] <= 1.0 for k in scores)
        assert scores["text_audio"] >= language["thresholds"]["text_audio"]
        assert scores["text_visual"] >= language["thresholds"]["text_visual"]
    assert (out / "hist_text_visual.png").exists()


def test_own_embedder_shapes_and_batch_independence(encoders: Path) -> None:
    from avpretrain.curation.embedders import AVMAEEmbedder
    from avpretrain.curation.text_tower import TextTower
    from avpretrain.heads.retrieval import RetrievalHead
    from avpretrain.heads.text import TextEncoder
    from avpretrain.models.encoder_file import load_encoders

    head = RetrievalHead(32, TextEncoder(width=64, depth=1, num_heads=2, max_length=16))
    head.bind(64, 64)
    model = load_encoders(encoders)
    tower = TextTower.from_head(model, head)
    emb = AVMAEEmbedder(model, text_tower=tower)
    waves = torch.randn(3, 8000)  # 1 s at 8 kHz: resampled to 16 kHz, padded to 192 frames
    audio = emb.embed_audio(waves, 8000)
    assert audio.shape == (3, 64)
    torch.testing.assert_close(emb.embed_audio([waves[1].numpy()], 8000)[0], audio[1])
    frames = torch.randint(0, 256, (2, 3, 40, 48), dtype=torch.uint8)
    assert emb.embed_frames(frames).shape == (2, 64)
    assert emb.embed_text(["a dog", "rain"]).shape == (2, 32)  # the retrieval space
    with pytest.raises(NotImplementedError):
        AVMAEEmbedder.from_file(encoders).embed_text(["a dog"])
    with pytest.raises(ValueError, match="equal length"):
        emb.embed_audio([np.zeros(100), np.zeros(200)], 16000)


def test_own_embedder_feeds_a_multi_frame_encoder(tmp_path: Path) -> None:
    from avpretrain.curation.embedders import AVMAEEmbedder

    model = AVMAE("tiny", "tiny_decoder", audio_shape=(64, 96), video_size=32, num_frames=2)
    emb = AVMAEEmbedder.from_file(save_encoders(model, tmp_path / "enc.pt"))
    assert emb.fbank_cfg.num_mel_bins == 64 and emb.fbank_cfg.target_frames == 96
    assert emb.embed_frames(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 64)
    assert emb.embed_audio(torch.randn(2, 16000), 16000).shape == (2, 64)


def test_curate_names_a_broken_shard(
    tmp_path: Path, encoders: Path, capsys: pytest.CaptureFixture
) -> None:
    from avpretrain.data.shards import write_index

    shards = tmp_path / "in"
    shards.mkdir()
    (shards / "bad-000000.tar").write_bytes(b"not a tar at all" * 64)
    write_index(shards, {"bad-000000.tar": 1})
    args = ["curate", str(shards), "--out", str(tmp_path / "out"), "--encoders", str(encoders)]
    assert avpretrain_main(args) == 2
    assert "bad-000000.tar" in capsys.readouterr().err


def test_curate_skips_and_counts_bad_samples_as_the_loader_does(
    tiny_world: Path,
    encoders: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from avpretrain.data.shards import write_index, write_shard

    samples = list(read_raw_samples(tiny_world / "train/synth-000000.tar"))  # 8 clips
    nulls = json.loads(samples[1]["json"])
    nulls.update(end=None, frame_times=None, caption=None, category=None)
    samples[0] = {**samples[0], "flac": b"not flac"}
    samples[1] = {**samples[1], "json": json.dumps(nulls).encode()}
    samples[2] = {**samples[2], "json": b"null"}
    shards = tmp_path / "in"
    shards.mkdir()
    write_shard(shards / "a-000000.tar", samples)
    write_shard(shards / "a-000001.tar", samples[3:])
    cut = (shards / "a-000001.tar").read_bytes()
    (shards / "a-000001.tar").write_bytes(cut[: len(cut) // 2 + 100])  # inside a later clip
    write_index(shards, {"a-000000.tar": 8, "a-000001.tar": 5})
    out = tmp_path / "out"
    args = ["curate", str(shards), "--out", str(out), "--encoders", str(encoders)]
    assert avpretrain_main(args) == 0
    printed = capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    readable_cut = len(list(_readable(shards / "a-000001.tar")))
    assert 0 < readable_cut < 5
    assert report["total"] == 5 + readable_cut
    assert "4 unreadable samples or shard parts skipped" in printed.out  # 3 samples + 1 tar cut
    assert read_index(out)["curation"]["unreadable_skipped"] == 4
    assert "field 'end' is None: a number is needed" in caplog.text
    assert "the JSON record is NoneType, not an object" in caplog.text
    assert "a-000001.tar: not a readable tar shard" in caplog.text


def _readable(path: Path):
    """The samples of a cut shard before its tar error."""
    try:
        yield from read_raw_samples(path)
    except ValueError:
        return
