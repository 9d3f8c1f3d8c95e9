"""Shard URL expansion and the webdataset pipeline stages, on tiny hand-made shards."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import fsspec
import pytest
import torch

from avpretrain.data.loading.audio import FbankConfig
from avpretrain.data.loading.pipeline import SkipCounter, StreamSeed, build_pipeline
from avpretrain.data.loading.samples import SampleOptions, choose_frames
from avpretrain.data.loading.urls import Shard, expand_urls, total_samples
from avpretrain.data.loading.video import decode_jpeg, frame_transform
from avpretrain.data.shards import write_shard
from tests.data.tiny_shards import FRAME_COLOURS, tiny_sample, write_tiny_shards

FBANK = FbankConfig(target_frames=48)
OPTS = SampleOptions(fbank=FBANK, frame_size=16, num_classes=4)


def read_all(urls: list[str], opts: SampleOptions = OPTS, batch_size: int = 3, **kw):
    counter = SkipCounter()
    dataset = build_pipeline(urls, opts, batch_size, StreamSeed(seed=1), counter, **kw)
    return list(dataset), counter


def keys_of(batches) -> list[str]:
    return [k for b in batches for k in b["key"]]


# -- URLs -------------------------------------------------------------------------------------


def test_expand_brace_folder_index_and_list(tmp_path: Path) -> None:
    paths = write_tiny_shards(tmp_path / "a", [2, 3, 1])
    names = [str(p) for p in paths]
    brace = expand_urls(str(tmp_path / "a" / "shard-{000000..000002}.tar"))
    assert [s.url for s in brace] == names and total_samples(brace) is None
    folder = expand_urls(tmp_path / "a")
    assert folder == [Shard(n, c) for n, c in zip(names, [2, 3, 1], strict=True)]
    assert expand_urls(str(tmp_path / "a" / "index.json")) == folder
    assert total_samples(folder) == 6
    write_tiny_shards(tmp_path / "b", [4], index=False)
    mixed = expand_urls([names[2], str(tmp_path / "b")])
    assert [s.samples for s in mixed] == [None, None] and mixed[1].url.endswith("shard-000000.tar")


def test_expand_streamed_and_missing(tmp_path: Path) -> None:
    piped = expand_urls("pipe:aws s3 cp s3://b/x-{0..2}.tar -")
    assert [s.url for s in piped] == [f"pipe:aws s3 cp s3://b/x-{i}.tar -" for i in range(3)]
    assert len(expand_urls("s3://bucket/train-{00..09}.tar")) == 10
    write_tiny_shards(tmp_path, [1], index=False)
    with pytest.raises(FileNotFoundError, match=r"2 of 3 shards .* do not exist"):
        expand_urls(str(tmp_path / "shard-{000000..000002}.tar"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no index.json and no"):
        expand_urls(tmp_path / "empty")


def test_remote_index_and_shards_through_fsspec(tmp_path: Path) -> None:
    """An index and shards in object storage (fsspec's in-memory file system stands in for s3)."""
    local = write_tiny_shards(tmp_path, [2, 3])
    fs = fsspec.filesystem("memory")
    for p in [*local, tmp_path / "index.json"]:
        fs.pipe(f"/bucket/train/{p.name}", p.read_bytes())
    shards = expand_urls("memory://bucket/train/")
    assert [(s.url, s.samples) for s in shards] == [
        ("memory://bucket/train/shard-000000.tar", 2),
        ("memory://bucket/train/shard-000001.tar", 3),
    ]
    batches, counter = read_all([s.url for s in shards])
    assert sorted(keys_of(batches)) == ["s0k0", "s0k1", "s1k0", "s1k1", "s1k2"]
    assert counter.total == 0


# -- batches ----------------------------------------------------------------------------------


def test_eval_batch_keys_shapes_dtypes_and_labels(tmp_path: Path) -> None:
    paths = write_tiny_shards(tmp_path, [5])
    batches, _ = read_all([str(p) for p in paths])
    assert [len(b["key"]) for b in batches] == [3, 2]  # eval keeps the incomplete batch
    b = batches[0]
    assert set(b) == {"key", "audio", "video", "label", "labels"}
    assert b["audio"].shape == (3, 1, 128, 48) and b["audio"].dtype == torch.float32
    assert b["video"].shape == (3, 3, 16, 16) and b["video"].dtype == torch.float32
    assert b["label"].dtype == torch.long and b["labels"].dtype == torch.float32
    # tiny_shards labels: clip j has [j % 4], plus (j + 1) % 4 when j % 3 == 2, none when j == 4
    expected = {0: [0], 1: [1], 2: [2, 3], 3: [3], 4: []}
    for batch in batches:
        for key, label, hot in zip(batch["key"], batch["label"], batch["labels"], strict=True):
            want = expected[int(key[-1])]
            assert label.item() == (want[0] if want else -1)
            assert hot.nonzero().flatten().tolist() == want


def test_eval_uses_middle_frame_and_train_varies(tmp_path: Path) -> None:
    paths = write_tiny_shards(tmp_path, [6], num_frames=5)
    candidates = torch.stack(
        [
            frame_transform(decode_jpeg(tiny_sample("x", [], num_frames=5)[f"f0{i}.jpg"]), 16)
            for i in range(len(FRAME_COLOURS))
        ]
    )

    def frame_indices(video: torch.Tensor) -> list[int]:
        colour = video.mean(dim=(2, 3))[:, None]  # flips and crops keep a solid colour
        return (colour - candidates.mean(dim=(2, 3))).abs().sum(-1).argmin(-1).tolist()

    batches, _ = read_all([str(p) for p in paths])
    assert {i for b in batches for i in frame_indices(b["video"])} == {5 // 2}
    train = SampleOptions(train=True, fbank=FBANK, frame_size=16)
    batches, _ = read_all([str(p) for p in paths] * 4, train, batch_size=24)
    assert len(set(frame_indices(batches[0]["video"]))) >= 3


def test_multi_frame_clips(tmp_path: Path) -> None:
    assert choose_frames(10, 4, train=False) == [1, 3, 6, 8]  # centres of 4 equal segments
    g = torch.Generator().manual_seed(0)
    picks = choose_frames(10, 4, train=True, generator=g)
    assert all(int(s * 2.5) <= i < (s + 1) * 2.5 for s, i in enumerate(picks))  # own segment
    assert choose_frames(2, 4, train=False) == [0, 0, 1, 1]
    paths = write_tiny_shards(tmp_path, [2], num_frames=4)
    opts = SampleOptions(fbank=FBANK, frame_size=16, num_frames_per_clip=2, keep_meta=True)
    (batch,), _ = read_all([str(p) for p in paths], opts)
    assert batch["video"].shape == (2, 3, 2, 16, 16)
    assert [m["video_id"] for m in batch["meta"]] == batch["key"]
    # frames 1 and 3 (green, yellow): red channel low then high
    red = batch["video"][0, 0].mean(dim=(1, 2))
    assert red[0] < 0 < red[1]


def test_accelerator_mode_waveform(tmp_path: Path) -> None:
    paths = write_tiny_shards(tmp_path, [2], seconds=0.5)
    opts = SampleOptions(fbank=FBANK, frame_size=16, audio_on_device=True)
    (batch,), _ = read_all([str(p) for p in paths], opts)
    n = (48 - 1) * 160 + 400  # samples for exactly 48 Kaldi frames of 25 ms / 10 ms
    assert "audio" not in batch and batch["waveform"].shape == (2, n)
    assert batch["waveform_len"].tolist() == [n, n]  # 0.5 s = 8000 samples > n: cut


def test_resampled_rate_is_converted(tmp_path: Path) -> None:
    """An 8 kHz shard feeds the 16 kHz features: same frame count as a 16 kHz clip."""
    write_shard(tmp_path / "s.tar", [tiny_sample("a", [0], sample_rate=8000)])
    opts = SampleOptions(fbank=FbankConfig(target_frames=100), frame_size=16, audio_on_device=True)
    (batch,), _ = read_all([str(tmp_path / "s.tar")], opts)
    assert batch["waveform_len"].item() == 8000  # 0.5 s at 16 kHz


# -- errors -----------------------------------------------------------------------------------


def _corrupt_sample(key: str, bad: str) -> dict:
    sample = tiny_sample(key, [1], num_frames=3)
    if bad == "jpeg":
        sample["f01.jpg"] = b"\xff\xd8 not a jpeg"  # the middle frame, used in eval
    else:
        sample["flac"] = sample["flac"][:40]
    return sample


def test_truncated_shard_and_corrupt_members_are_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good, cut = write_tiny_shards(tmp_path, [4, 4], index=False)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    mixed = tmp_path / "mixed.tar"
    ok = [tiny_sample(f"ok{i}", [0], num_frames=3) for i in range(2)]
    write_shard(
        mixed, [ok[0], _corrupt_sample("badjpg", "jpeg"), _corrupt_sample("badflac", "flac"), ok[1]]
    )
    with caplog.at_level(logging.WARNING, logger="avpretrain.data"):
        batches, counter = read_all([str(good), str(cut), str(mixed)], batch_size=2)
    keys = keys_of(batches)
    assert {"s0k0", "s0k1", "s0k2", "s0k3", "ok0", "ok1"} <= set(keys)
    assert "badjpg" not in keys and "badflac" not in keys
    assert 0 < sum(k.startswith("s1") for k in keys) < 4  # the intact first half of the cut shard
    text = caplog.text
    assert "badjpg" in text and "badflac" in text and str(cut) in text and str(mixed) in text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert counter.total == len(warnings) >= 3


def test_decode_stage_stops_when_every_sample_fails(tmp_path: Path) -> None:
    broken = [{**tiny_sample(f"k{i}", [0], num_frames=1), "flac": b"junk"} for i in range(101)]
    write_shard(tmp_path / "s.tar", broken)
    with pytest.raises(RuntimeError, match="100 samples in a row failed"):
        read_all([str(tmp_path / "s.tar")])


# -- workers ----------------------------------------------------------------------------------


def test_pipeline_pickles_and_workers_split_shards(tmp_path: Path) -> None:
    """Picklable (spawn-safe); two forked workers read disjoint shards and share the counter."""
    paths = write_tiny_shards(tmp_path, [2, 2, 2, 2])
    paths[3].write_bytes(paths[3].read_bytes()[:1000])  # one error, raised inside a worker
    counter = SkipCounter()
    dataset = build_pipeline([str(p) for p in paths], OPTS, 2, StreamSeed(), counter)
    clone = pickle.loads(pickle.dumps(dataset))
    assert keys_of(clone) == keys_of(dataset)
    counter.counts.zero_()
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    keys = keys_of(loader)
    assert sorted(keys) == ["s0k0", "s0k1", "s1k0", "s1k1", "s2k0", "s2k1"]
    assert counter.total >= 1  # counted in a worker process, read in this one
