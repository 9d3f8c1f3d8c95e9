"""AudioSet converter on tiny segment and class-index CSVs in the official format."""

import json
from pathlib import Path

import pytest
import torch

from avpretrain.converters.audioset import convert, main, read_class_indices
from avpretrain.data.loading.samples import _labels

SEGMENTS = """# Segments csv created Sun Mar  5 10:54:31 2017
# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=5
# YTID, start_seconds, end_seconds, positive_labels
--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"
--ZhevVpy1s, 50.000, 60.000, "/m/012xff"
--aE2O5G5WE, 0.000, 7.500, "/m/03fwl,/m/04rlf,/m/09x0r,/m/03fwl"
"""
INDICES = """index,mid,display_name
0,/m/09x0r,"Speech"
1,/m/03fwl,"Goat"
2,/m/04rlf,"Music"
3,/t/dd00088,"Gush"
4,/m/012xff,"Toothbrush"
"""


@pytest.fixture
def aset(tmp_path: Path) -> dict[str, Path]:
    videos = tmp_path / "videos"
    videos.mkdir()
    for ytid in ("--PJHxphWEs", "--aE2O5G5WE"):
        (videos / f"{ytid}.mp4").write_bytes(b"")
    (tmp_path / "eval_segments.csv").write_text(SEGMENTS)
    (tmp_path / "class_labels_indices.csv").write_text(INDICES)
    return {
        "videos": videos,
        "segments": tmp_path / "eval_segments.csv",
        "indices": tmp_path / "class_labels_indices.csv",
    }


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_class_indices(aset):
    classes = read_class_indices(aset["indices"])
    assert classes["/m/09x0r"] == (0, "Speech") and classes["/m/012xff"] == (4, "Toothbrush")


def test_multilabel_rows(aset, tmp_path):
    out = tmp_path / "eval.jsonl"
    summary = convert(aset["segments"], aset["indices"], aset["videos"], out)
    assert summary == {"clips": 2, "missing_videos": 1, "classes": 5, "out": str(out)}
    assert rows(out) == [
        {
            "path": str(aset["videos"] / "--PJHxphWEs.mp4"),
            "id": "--PJHxphWEs",
            "start": 0.0,
            "end": 10.0,
            "labels": [0, 3],
        },
        {
            "path": str(aset["videos"] / "--aE2O5G5WE.mp4"),
            "id": "--aE2O5G5WE",
            "start": 0.0,
            "end": 7.5,  # a segment cut short by the end of its video
            "labels": [1, 2, 0],  # file order, the repeated MID once
        },
    ]
    # what the classification loader makes of a clip's labels: the multi-hot target
    _, multi_hot = _labels({"labels": rows(out)[1]["labels"]}, 5)
    assert torch.equal(multi_hot, torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0]))


def test_untrimmed_pattern(aset, tmp_path):
    out = tmp_path / "full.jsonl"
    convert(
        aset["segments"],
        aset["indices"],
        aset["videos"],
        out,
        pattern="Y{ytid}_{start_ms}.mkv",
        untrimmed=True,
        check_videos=False,
    )
    first = rows(out)[0]
    assert first["path"] == str(aset["videos"] / "Y--PJHxphWEs_30000.mkv")
    assert (first["start"], first["end"]) == (30.0, 40.0)


def test_bad_input_names_file_and_line(aset, tmp_path):
    unknown = tmp_path / "unknown.csv"
    unknown.write_text(SEGMENTS + '--x, 0.000, 10.000, "/m/09x0r,/m/0zzzz"\n')
    with pytest.raises(ValueError, match=r"unknown\.csv:7: unknown label MID '/m/0zzzz'"):
        convert(unknown, aset["indices"], aset["videos"], tmp_path / "o.jsonl")
    short = tmp_path / "short.csv"
    short.write_text(SEGMENTS + "--x, 0.000, 10.000\n")
    with pytest.raises(ValueError, match=r"short\.csv:7: 3 fields, expected 4"):
        convert(short, aset["indices"], aset["videos"], tmp_path / "o.jsonl")
    header = tmp_path / "header.csv"
    header.write_text("index,display_name\n0,Speech\n")
    with pytest.raises(ValueError, match=r"header\.csv: missing column\(s\) \['mid'\]"):
        convert(aset["segments"], header, aset["videos"], tmp_path / "o.jsonl")


def test_main(aset, tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    argv = [str(aset["segments"]), "--class-index", str(aset["indices"])]
    assert main([*argv, "--videos", str(aset["videos"]), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["clips"] == 2
    assert main([*argv, "--videos", str(tmp_path / "none"), "--out", str(out)]) == 2
