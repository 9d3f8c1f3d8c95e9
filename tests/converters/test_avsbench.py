"""AVSBench converter on a tiny S4 / MS3 release in the official layout, read back through
:func:`~avpretrain.tasks.targets.segmentation.png_mask_targets`."""

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import webdataset as wds
from PIL import Image

from avpretrain.converters.avsbench import convert, main, read_meta
from avpretrain.data.audio_codec import decode_flac
from avpretrain.data.loading.samples import SampleOptions
from avpretrain.data.shards import read_index
from avpretrain.tasks.targets.segmentation import png_mask_targets

S4_CSV = """name,start,category,split
-0Zv7ZFqtSw_5000_10000,5,dog_barking,train
1cYqKxwZyMU_0_5000,0,lawn_mowing,test
missing_0_5000,0,lawn_mowing,test
"""
MS3_CSV = """video_id,split
6DR8dA9TDOc_1,val
"""
SIDE = 16


def mask_array(i: int) -> np.ndarray:
    """Frame i's mask: a 4 x 8 block whose row moves with i (0/255, as AVSBench's S4 PNGs)."""
    m = np.zeros((SIDE, SIDE), np.uint8)
    m[2 * i : 2 * i + 4, 4:12] = 255
    return m


def save_frame(path: Path, i: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((SIDE, SIDE, 3), 40 * i, np.uint8)).save(path)


def save_wav(path: Path, rate: int = 16000) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    left = np.linspace(-0.5, 0.5, rate, dtype=np.float32)
    sf.write(path, np.stack([left, 0.5 * left], axis=1), rate)
    return 0.75 * left  # the mono mix


@pytest.fixture
def s4(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "Single-source" / "s4_data"
    for split, cat, name, masks in (
        ("train", "dog_barking", "-0Zv7ZFqtSw_5000_10000", 1),
        ("test", "lawn_mowing", "1cYqKxwZyMU_0_5000", 5),
    ):
        for i in range(1, 6):
            save_frame(root / "visual_frames" / split / cat / name / f"{name}_{i}.png", i)
        for i in range(1, masks + 1):
            path = root / "gt_masks" / split / cat / name / f"{name}_{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask_array(i)).convert("1").save(path)
        save_wav(root / "audio_wav" / split / cat / f"{name}.wav")
    csv = tmp_path / "Single-source" / "s4_meta_data.csv"
    csv.write_text(S4_CSV)
    return {"root": root, "csv": csv}


def read_samples(out: Path) -> list[dict]:
    urls = [s["url"] for s in read_index(out)["shards"]]
    return [raw for url in urls for raw in wds.WebDataset(url, shardshuffle=False)]


def targets(raw: dict, size: int = SIDE) -> np.ndarray:
    sample = {**raw, "__frames__": [raw["f00.jpg"]], "__frame_indices__": [0]}
    opts = SampleOptions(train=False, frame_size=size)
    return png_mask_targets(sample, json.loads(raw["json"]), opts)["mask"].numpy()


def test_read_meta(s4):
    videos = read_meta(s4["csv"], "s4")
    assert [(v.name, v.split, v.category) for v in videos[:2]] == [
        ("-0Zv7ZFqtSw_5000_10000", "train", "dog_barking"),
        ("1cYqKxwZyMU_0_5000", "test", "lawn_mowing"),
    ]
    assert videos[2].where == f"{s4['csv']}:4"


def test_s4_test_split_one_clip_per_frame(s4, tmp_path, caplog):
    out = tmp_path / "avsbench_s4" / "test"
    with caplog.at_level(logging.WARNING):
        summary = convert(s4["csv"], s4["root"], out, "s4", "test", shard_size=3)
    assert summary == {"videos": 1, "clips": 5, "missing_videos": 1, "shards": 2}
    assert "missing_0_5000" in caplog.text
    assert read_index(out)["summary"] == summary
    samples = read_samples(out)
    assert [s["__key__"] for s in samples] == [f"1cYqKxwZyMU_0_5000_{i}" for i in range(1, 6)]
    wav = s4["root"] / "audio_wav" / "test" / "lawn_mowing" / "1cYqKxwZyMU_0_5000.wav"
    mono = save_wav(tmp_path / "ref.wav")
    for i, raw in enumerate(samples, 1):
        meta = json.loads(raw["json"])
        assert meta["video_id"] == "1cYqKxwZyMU_0_5000" and meta["category"] == "lawn_mowing"
        assert meta["frame_times"] == [i - 1 + 15 / 16] and meta["end"] == 1.0
        assert meta["annotations"] == {"subset": "s4", "frame": i}
        mask_file = s4["root"] / "gt_masks/test/lawn_mowing/1cYqKxwZyMU_0_5000"
        assert raw["m00.png"] == (mask_file / f"1cYqKxwZyMU_0_5000_{i}.png").read_bytes()
        np.testing.assert_array_equal(targets(raw), mask_array(i) > 0)
        frame = np.asarray(Image.open(io.BytesIO(raw["f00.jpg"])))
        assert abs(int(frame[8, 8, 0]) - 40 * i) <= 2  # the i-th frame (JPEG)
    audio, rate = decode_flac(samples[0]["flac"])
    assert rate == 16000 and wav.exists()
    np.testing.assert_allclose(audio, mono, atol=1e-4)  # channels averaged, 16-bit FLAC


def test_s4_train_has_the_first_frame_only_and_resizes(s4, tmp_path):
    out = tmp_path / "train"
    assert convert(s4["csv"], s4["root"], out, "s4", "train", size=8)["clips"] == 1
    (raw,) = read_samples(out)
    assert raw["__key__"] == "-0Zv7ZFqtSw_5000_10000_1"
    # nearest 16 -> 8 keeps every other pixel: the block of rows 2-5, columns 4-11
    np.testing.assert_array_equal(targets(raw, 8), mask_array(1)[::2, ::2] > 0)
    assert Image.open(io.BytesIO(raw["f00.jpg"])).size == (8, 8)


def test_ms3_palette_masks(tmp_path):
    root = tmp_path / "ms3_data"
    name = "6DR8dA9TDOc_1"
    for i in range(1, 6):
        save_frame(root / "visual_frames" / name / f"{name}.mp4_{i}.png", i)
        path = root / "gt_masks" / "val" / name / f"{name}_{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        mask = Image.fromarray((mask_array(i) > 0).astype(np.uint8), mode="P")
        mask.putpalette([0, 0, 0, 0, 0, 0])  # label 1 drawn black: the index is the label
        mask.save(path)
    save_wav(root / "audio_wav" / "val" / f"{name}.wav", rate=8000)
    csv = tmp_path / "ms3_meta_data.csv"
    csv.write_text(MS3_CSV)
    out = tmp_path / "ms3_val"
    argv = [str(csv), "--data", str(root), "--out", str(out), "--subset", "ms3"]
    assert main([*argv, "--split", "val"]) == 0
    samples = read_samples(out)
    assert len(samples) == 5
    assert json.loads(samples[0]["json"])["category"] is None
    np.testing.assert_array_equal(targets(samples[3]), mask_array(4) > 0)
    audio, rate = decode_flac(samples[0]["flac"])
    assert rate == 16000 and len(audio) == 16000  # 1 s resampled from 8 kHz
    assert main([*argv, "--split", "val"]) == 2  # the folder already holds shards


def test_bad_input(s4, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,start,split\nx,0,test\n")
    with pytest.raises(ValueError, match=r"bad\.csv: missing column\(s\) \['category'\]"):
        convert(bad, s4["root"], tmp_path / "o", "s4", "test")
    bad.write_text(S4_CSV + "y,0,dog_barking,valid\n")
    with pytest.raises(ValueError, match=r"bad\.csv:5: split 'valid'"):
        convert(bad, s4["root"], tmp_path / "o", "s4", "test")
    mask = s4["root"] / "gt_masks/test/lawn_mowing/1cYqKxwZyMU_0_5000/1cYqKxwZyMU_0_5000_3.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(mask)
    argv = [str(s4["csv"]), "--data", str(s4["root"]), "--out", str(tmp_path / "o2")]
    assert main([*argv, "--subset", "s4", "--split", "test"]) == 2
    assert f"{mask}: mask of (8, 8) pixels" in capsys.readouterr().err
