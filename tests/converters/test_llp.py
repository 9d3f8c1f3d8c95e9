"""LLP converter on tiny files in the official tab-separated format."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from avpretrain.cli import main as cli_main
from avpretrain.converters.llp import LLP_CLASSES, convert, parse_filename
from avpretrain.data.ingest.manifest import read_inputs
from avpretrain.metrics.parsing import segments_to_matrix

WEAK = """filename\tevent_labels
BjCEufrlXm4_20_30\tSpeech,Dog
CSWQ_HzQ_10_20\tSpeech
GN3k_CvthEg_80_90\tBasketball_bounce,Speech
-3M-k4nIYIM_30_40\tSpeech,Car
"""
AUDIO = """filename\tonset\toffset\tevent_labels
BjCEufrlXm4_20_30\t0\t4\tSpeech
BjCEufrlXm4_20_30\t3\t10\tDog
BjCEufrlXm4_20_30\t9\t9\tSpeech
KSRjje7GH44_60_70\t8\t10\tBlender
CSWQ_HzQ_10_20\t0\t9\tSpeech
"""
VISUAL = """filename\tonset\toffset\tevent_labels
BjCEufrlXm4_20_30\t0\t10\tDog
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def llp(tmp_path: Path) -> dict[str, Path]:
    videos = tmp_path / "video"
    (videos / "sub").mkdir(parents=True)
    # the official download names each trimmed excerpt by filename[:11]
    for name in ("BjCEufrlXm4.mp4", "CSWQ_HzQ_10.mp4", "sub/GN3k_CvthEg.mp4"):
        (videos / name).write_bytes(b"")
    return {
        "videos": videos,
        "weak": write(tmp_path, "AVVP_test_pd.csv", WEAK),
        "audio": write(tmp_path, "AVVP_eval_audio.csv", AUDIO),
        "visual": write(tmp_path, "AVVP_eval_visual.csv", VISUAL),
    }


def test_parse_filename_keeps_underscores_in_the_id():
    assert parse_filename("GN3k_CvthEg_80_90") == ("GN3k_CvthEg", 80, 90)
    assert parse_filename("-3M-k4nIYIM_30_40") == ("-3M-k4nIYIM", 30, 40)
    with pytest.raises(ValueError, match="_<start>_<end>"):
        parse_filename("BjCEufrlXm4")


def test_convert_dense_split(llp, tmp_path, caplog):
    out = tmp_path / "test.jsonl"
    with caplog.at_level(logging.WARNING):
        summary = convert(llp["weak"], llp["videos"], out, llp["audio"], llp["visual"])
    assert summary == {
        "videos": 3,
        "missing_videos": 1,
        "audio_segments": 4,
        "visual_segments": 1,
        "dense_other_videos": 1,
        "out": str(out),
    }
    assert "-3M-k4nIYIM_30_40" in caplog.text  # the missing video is named
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["BjCEufrlXm4_20_30", "CSWQ_HzQ_10_20", "GN3k_CvthEg_80_90"]
    first = rows[0]
    assert first["path"] == str(llp["videos"] / "BjCEufrlXm4.mp4")
    assert (first["start"], first["end"]) == (0.0, 10.0)
    speech, dog = LLP_CLASSES.index("Speech"), LLP_CLASSES.index("Dog")
    assert (speech, dog) == (0, 3)
    assert first["labels"] == [0, 3]
    assert first["annotations"] == {
        "weak": [0, 3],
        "audio_segments": [[0, 0, 4], [3, 3, 10], [0, 9, 9]],
        "visual_segments": [[3, 0, 10]],
    }
    assert rows[1]["annotations"]["visual_segments"] == []  # no visual event in this video
    assert rows[2]["path"].endswith("sub/GN3k_CvthEg.mp4")
    # the ground truth the official eval builds from these rows
    gt = segments_to_matrix(first["annotations"]["audio_segments"])
    assert gt.shape == (25, 10)
    np.testing.assert_array_equal(gt[0], [1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(gt[3], [0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    assert gt.sum() == 11


def test_manifest_reads_back_through_ingest(llp, tmp_path):
    out = tmp_path / "train.jsonl"
    convert(llp["weak"], llp["videos"], out)
    sources, classes = read_inputs(out)
    assert classes is None  # labels are indices already
    clip = sources[0].clips[0]
    assert (clip.start, clip.end, clip.labels) == (0.0, 10.0, (0, 3))
    assert clip.video_id == "BjCEufrlXm4_20_30"
    assert clip.annotations == {"weak": [0, 3]}  # no dense files given: weak labels only


def test_untrimmed_takes_the_window_from_the_name(llp, tmp_path):
    out = tmp_path / "full.jsonl"
    summary = convert(llp["weak"], llp["videos"], out, check_videos=False, untrimmed=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["videos"] == 4 and summary["missing_videos"] == 0
    assert (rows[2]["start"], rows[2]["end"]) == (80.0, 90.0)
    assert rows[2]["path"] == str(llp["videos"] / "GN3k_CvthEg.mp4")


def test_bad_files_name_the_file_and_line(llp, tmp_path):
    bad = write(tmp_path, "bad.csv", WEAK + "Xx_0_10\tSpeech,Trumpet\n")
    with pytest.raises(ValueError, match=r"bad\.csv:6: unknown LLP class 'Trumpet'"):
        convert(bad, llp["videos"], tmp_path / "o.jsonl")
    commas = write(tmp_path, "commas.csv", "filename,event_labels\nBjCEufrlXm4_20_30,Speech\n")
    with pytest.raises(ValueError, match="missing column"):
        convert(commas, llp["videos"], tmp_path / "o.jsonl")
    onset = write(tmp_path, "onset.csv", AUDIO + "BjCEufrlXm4_20_30\tx\t3\tDog\n")
    with pytest.raises(ValueError, match=r"onset\.csv:7: 'x' is not a time"):
        convert(llp["weak"], llp["videos"], tmp_path / "o.jsonl", audio_csv=onset)


def test_cli_subcommand(llp, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    argv = ["convert-llp", str(llp["weak"]), "--videos", str(llp["videos"]), "--out", str(out)]
    assert cli_main([*argv, "--audio-csv", str(llp["audio"])]) == 0
    assert json.loads(capsys.readouterr().out)["videos"] == 3
    assert len(out.read_text().splitlines()) == 3
    assert cli_main(["convert-llp", str(tmp_path / "nope.csv"), "--videos", "v", "--out", "o"]) == 2
