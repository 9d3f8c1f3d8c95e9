"""Frames decoded after transfer (``frames_on_device``) equal the worker-decoded frames."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from avpretrain.data.loading.audio import FbankConfig
from avpretrain.data.loading.datamodule import AVDataModule
from avpretrain.data.loading.device_decode import decode_frames_in_batch, jpeg_size
from avpretrain.data.loading.pipeline import SkipCounter, StreamSeed, build_pipeline
from avpretrain.data.loading.samples import SampleOptions
from avpretrain.data.schema import encode_sample, make_meta
from avpretrain.data.shards import write_index, write_shard


def _textured_sample(key: str, rng: np.random.Generator, height: int, width: int) -> dict:
    """Frames of smooth noise (a crop or flip changes them), sizes differing between clips."""
    frames = []
    for _ in range(4):
        small = rng.integers(0, 256, (height // 4, width // 4, 3))
        frames.append(np.kron(small, np.ones((4, 4, 1))).astype(np.uint8))
    audio = 0.3 * np.sin(np.arange(8000) * 0.05 + rng.uniform(0, 6))
    meta = make_meta(key, 0.0, 0.5, 16000, [0.0, 0.1, 0.2, 0.3], labels=[0])
    return encode_sample(key, frames, audio, meta, audio_codec="pcm")


def _shards(folder: Path) -> list[str]:
    rng = np.random.default_rng(0)
    sizes = [(40, 56), (48, 40), (44, 44)]
    for s in range(2):
        samples = [_textured_sample(f"s{s}k{j}", rng, *sizes[j % 3]) for j in range(5)]
        write_shard(folder / f"shard-{s:06d}.tar", samples)
    write_index(folder)
    return [str(p) for p in sorted(folder.glob("*.tar"))]


def _batches(urls: list[str], **opts) -> list[dict]:
    options = SampleOptions(fbank=FbankConfig(target_frames=16), frame_size=24, **opts)
    stream = StreamSeed(seed=3)
    return list(build_pipeline(urls, options, 4, stream, SkipCounter(), shuffle_buffer=3))


@pytest.mark.parametrize(
    ("train", "frames"), [(True, 1), (False, 1), (True, 2)], ids=["train", "eval", "clip"]
)
def test_device_batches_equal_worker_batches(tmp_path: Path, train: bool, frames: int) -> None:
    urls = _shards(tmp_path)
    opts = {"train": train, "num_frames_per_clip": frames, "audio_on_device": True}
    worker = _batches(urls, **opts)
    device = _batches(urls, frames_on_device=True, **opts)
    assert len(worker) == len(device) == (2 if train else 3)
    for a, b in zip(worker, device, strict=True):
        assert "video" not in b and len(b["frames_jpeg"]) == len(b["key"])
        assert all(len(f) == frames for f in b["frames_jpeg"])
        b, dropped = decode_frames_in_batch(b, 24, "cpu")
        assert dropped == 0 and a["key"] == b["key"]
        assert b["video"].shape == a["video"].shape
        shape = (len(a["key"]), 3, 24, 24) if frames == 1 else (len(a["key"]), 3, frames, 24, 24)
        assert a["video"].shape == shape
        # the same crop and flip draws, the same libjpeg-turbo decode: equal up to float order
        torch.testing.assert_close(b["video"], a["video"], atol=1e-5, rtol=0)
        assert torch.equal(a["waveform"], b["waveform"])  # the later draws are unchanged too
    if train:  # the crops really differ between samples (the test would be weak otherwise)
        video = worker[0]["video"]
        assert not torch.allclose(video[0], video[1])


def test_a_broken_jpeg_drops_its_sample_by_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (batch,) = _batches(_shards(tmp_path)[:1], train=True, frames_on_device=True)
    batch["frames_jpeg"][1] = [batch["frames_jpeg"][1][0][:200]]  # header intact, data cut
    key = batch["key"][1]
    with caplog.at_level(logging.WARNING, logger="avpretrain.data"):
        out, dropped = decode_frames_in_batch(batch, 24, "cpu")
    assert dropped == 1 and key not in out["key"] and len(out["key"]) == 3
    assert out["video"].shape[0] == out["audio"].shape[0] == 3
    assert key in caplog.text


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"optimize": True}])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_jpeg_size_reads_the_frame_header(options: dict, mode: str) -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 51, 3), np.uint8))
    buf = io.BytesIO()
    image.convert(mode).save(buf, "JPEG", exif=b"Exif\0\0" + bytes(300), **options)
    assert jpeg_size(buf.getvalue()) == (37, 51)
    with pytest.raises(ValueError, match="no frame header"):
        jpeg_size(buf.getvalue()[:200])
    with pytest.raises(ValueError, match="not a JPEG"):
        jpeg_size(b"\x89PNG....")
    with pytest.raises(ValueError, match="no marker at byte 2"):
        jpeg_size(b"\xff\xd8 junk")


def test_datamodule_option_decodes_after_transfer(tmp_path: Path) -> None:
    _shards(tmp_path)
    common = {"batch_size": 4, "num_workers": 0, "frame_size": 24, "shuffle_buffer": 0}
    common.update(fbank=FbankConfig(target_frames=16), audio_on_device=True)
    dm = AVDataModule(val_urls=str(tmp_path), frames_on_device=True, **common)
    reference = AVDataModule(val_urls=str(tmp_path), **common)
    for raw, ref in zip(dm.val_dataloader(), reference.val_dataloader(), strict=True):
        assert "frames_jpeg" in raw and "video" not in raw
        batch = dm.device_transform(raw)
        ref = reference.device_transform(ref)
        assert "frames_jpeg" not in batch and "frame_crop" not in batch
        torch.testing.assert_close(batch["video"], ref["video"], atol=1e-5, rtol=0)
        torch.testing.assert_close(batch["audio"], ref["audio"])
