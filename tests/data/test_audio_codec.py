"""Audio codecs: FLAC and raw PCM store the same samples, the loader reads both, reencode."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avpretrain.cli import main as cli_main
from avpretrain.data.audio_codec import (
    decode_audio,
    encode_audio,
    flac_to_pcm16,
    quantize_pcm16,
    read_pcm16,
)
from avpretrain.data.loading.audio import FbankConfig
from avpretrain.data.loading.pipeline import SkipCounter, StreamSeed, build_pipeline
from avpretrain.data.loading.samples import SampleOptions
from avpretrain.data.shards import read_raw_samples, write_shard
from tests.data.tiny_shards import tiny_sample, write_tiny_shards


def _audio(n: int = 4001) -> np.ndarray:
    rng = np.random.default_rng(0)
    edges = [1.0, -1.0, 0.5 / 32768, 1.5 / 32768, -0.99999, 1.2, -1.3]  # rounding and clipping
    return np.concatenate([rng.uniform(-1, 1, n), edges])


def test_both_codecs_store_libsndfiles_samples_bit_exactly() -> None:
    audio = _audio()
    reference = io.BytesIO()  # libsndfile quantising the floats itself, as ingest did before
    sf.write(reference, np.clip(audio, -1, 1), 16000, format="FLAC", subtype="PCM_16")
    expected, _ = sf.read(io.BytesIO(reference.getvalue()), dtype="int16")
    np.testing.assert_array_equal(quantize_pcm16(audio), expected)
    ext_f, flac = encode_audio(audio, 16000, "flac")
    ext_p, pcm = encode_audio(audio, 16000, "pcm")
    assert (ext_f, ext_p) == ("flac", "pcm16") and len(pcm) == 2 * audio.shape[0]
    np.testing.assert_array_equal(flac_to_pcm16(flac)[0], expected)
    np.testing.assert_array_equal(read_pcm16(pcm), expected)
    # round trips through the other codec are lossless
    assert encode_audio(read_pcm16(pcm), 16000, "flac")[1] == flac
    assert encode_audio(flac_to_pcm16(flac)[0], 16000, "pcm")[1] == pcm
    wave_f, rate_f = decode_audio({"flac": flac}, {})
    wave_p, rate_p = decode_audio({"pcm16": pcm}, {"sample_rate": 16000})
    assert rate_f == rate_p == 16000 and wave_p.dtype == np.float32
    np.testing.assert_array_equal(wave_f, wave_p)
    np.testing.assert_array_equal(wave_p, expected / 32768.0)


def test_malformed_members_are_named() -> None:
    with pytest.raises(ValueError, match="malformed pcm16 member: 7 bytes"):
        read_pcm16(b"\x00" * 7)
    with pytest.raises(ValueError, match="positive integer sample_rate"):
        decode_audio({"pcm16": b"\x00\x00"}, {"sample_rate": "16000"})
    with pytest.raises(ValueError, match="has flac and pcm16"):
        decode_audio({"pcm16": b"\x00\x00", "flac": b""}, {"sample_rate": 16000})
    with pytest.raises(ValueError, match="audio codec must be one of"):
        encode_audio(_audio(), 16000, "mp3")


def _batches(folder: Path, **opts) -> list[dict]:
    options = SampleOptions(fbank=FbankConfig(target_frames=32), frame_size=16, **opts)
    urls = [str(p) for p in sorted(folder.glob("*.tar"))]
    return list(build_pipeline(urls, options, 3, StreamSeed(), SkipCounter()))


@pytest.mark.parametrize("on_device", [False, True])
def test_pcm_shards_read_the_same_as_flac_shards(tmp_path: Path, on_device: bool) -> None:
    write_tiny_shards(tmp_path / "flac", [3, 2])
    write_tiny_shards(tmp_path / "pcm", [3, 2], audio_codec="pcm")
    names = {p.name for p in (tmp_path / "pcm").glob("*.tar")}
    raw = next(read_raw_samples(tmp_path / "pcm" / sorted(names)[0]))
    assert "pcm16" in raw and "flac" not in raw
    flac, pcm = (_batches(tmp_path / c, audio_on_device=on_device) for c in ("flac", "pcm"))
    assert len(flac) == len(pcm) == 2
    name = "waveform" if on_device else "audio"
    for a, b in zip(flac, pcm, strict=True):
        assert a["key"] == b["key"]
        assert torch.equal(a[name], b[name]) and torch.equal(a["video"], b["video"])


def test_malformed_pcm_member_is_skipped_naming_shard_and_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tiny_sample("oddbytes", [0], audio_codec="pcm")
    bad["pcm16"] = bad["pcm16"][:-1]
    good = [tiny_sample(f"ok{i}", [0], audio_codec="pcm") for i in range(3)]
    write_shard(tmp_path / "s.tar", [good[0], bad, *good[1:]])
    with caplog.at_level(logging.WARNING, logger="avpretrain.data"):
        (batch,) = _batches(tmp_path)
    assert batch["key"] == ["ok0", "ok1", "ok2"]
    line = next(r.getMessage() for r in caplog.records if "oddbytes" in r.getMessage())
    assert str(tmp_path / "s.tar") in line and "malformed pcm16 member: 15999 bytes" in line


def test_reencode_round_trip_keeps_every_other_member(tmp_path: Path, capsys) -> None:
    write_tiny_shards(tmp_path / "src", [3, 2])
    assert cli_main(["reencode", str(tmp_path / "src"), "--out", str(tmp_path / "pcm"),
                     "--codec", "pcm"]) == 0  # fmt: skip
    ratio = float(capsys.readouterr().out.rsplit(":", 1)[1])
    assert ratio > 1.0  # PCM is larger than FLAC
    assert cli_main(["reencode", str(tmp_path / "pcm"), "--out", str(tmp_path / "back"),
                     "--codec", "flac"]) == 0  # fmt: skip
    index = json.loads((tmp_path / "pcm" / "index.json").read_text())
    assert index["total"] == 5 and index["audio_codec"] == "pcm"
    for shard in sorted((tmp_path / "src").glob("*.tar")):
        src = list(read_raw_samples(shard))
        pcm = list(read_raw_samples(tmp_path / "pcm" / shard.name))
        back = list(read_raw_samples(tmp_path / "back" / shard.name))
        assert back == src  # byte for byte, FLAC included
        for a, b in zip(src, pcm, strict=True):
            assert set(b) == {k if k != "flac" else "pcm16" for k in a}
            assert {k: v for k, v in a.items() if k != "flac"} == {
                k: v for k, v in b.items() if k != "pcm16"
            }
            np.testing.assert_array_equal(flac_to_pcm16(a["flac"])[0], read_pcm16(b["pcm16"]))


def test_reencode_names_shard_and_key_of_a_malformed_member(tmp_path: Path, capsys) -> None:
    bad = tiny_sample("oddbytes", [0], audio_codec="pcm")
    bad["pcm16"] = bad["pcm16"][:-1]
    (tmp_path / "src").mkdir()
    write_shard(tmp_path / "src" / "s.tar", [tiny_sample("ok", [0], audio_codec="pcm"), bad])
    assert cli_main(["reencode", str(tmp_path / "src"), "--out", str(tmp_path / "out"),
                     "--codec", "flac"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert str(tmp_path / "src" / "s.tar") in err and "'oddbytes'" in err and "15999" in err
    assert not (tmp_path / "out" / "s.tar").exists()
