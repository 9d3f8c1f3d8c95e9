"""VGGSound converter on a tiny ``vggsound.csv`` in the official header-less format."""

import json
import logging
from pathlib import Path

import pytest

from avpretrain.converters.vggsound import classes_path, convert, main, read_vggsound
from avpretrain.data.ingest.manifest import read_inputs

CSV = """---g-f_I2yQ,1,people marching,test
--0PQM4-hqg,30,waterfall burbling,train
--56QUhyDQM,185,playing tennis,train
-0dQcxNrbgI,0,"female speech, woman speaking",train
--0PQM4-hqg,120,playing tennis,test
"""


@pytest.fixture
def vgg(tmp_path: Path) -> dict[str, Path]:
    videos = tmp_path / "clips"
    (videos / "sub").mkdir(parents=True)
    for name in ("--0PQM4-hqg_000030.mp4", "-0dQcxNrbgI_000000.mp4", "---g-f_I2yQ_000001.mp4"):
        (videos / name).write_bytes(b"")
    (videos / "sub" / "--0PQM4-hqg_000120.mkv").write_bytes(b"")  # found by its stem
    csv = tmp_path / "vggsound.csv"
    csv.write_text(CSV, encoding="utf-8")
    return {"videos": videos, "csv": csv}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_read_keeps_quoted_commas_and_line_numbers(vgg):
    clips = read_vggsound(vgg["csv"])
    assert [c.clip_id for c in clips[:2]] == ["---g-f_I2yQ_000001", "--0PQM4-hqg_000030"]
    assert clips[3].label == "female speech, woman speaking"
    assert clips[3].where == f"{vgg['csv']}:4"


def test_train_split_with_sorted_classes(vgg, tmp_path, caplog):
    out = tmp_path / "train.jsonl"
    with caplog.at_level(logging.WARNING):
        summary = convert(vgg["csv"], vgg["videos"], out, split="train")
    assert summary == {
        "clips": 2,
        "missing_videos": 1,
        "other_split": 2,
        "other_classes": 0,
        "classes": 4,
        "out": str(out),
        "classes_out": str(tmp_path / "train.classes.txt"),
    }
    assert "--56QUhyDQM_000185" in caplog.text  # the missing clip is named
    # every label of the file (both splits), sorted: train and test number classes alike
    assert classes_path(out).read_text().splitlines() == [
        "female speech, woman speaking",
        "people marching",
        "playing tennis",
        "waterfall burbling",
    ]
    assert rows(out) == [
        {
            "path": str(vgg["videos"] / "--0PQM4-hqg_000030.mp4"),
            "id": "--0PQM4-hqg_000030",
            "start": 0.0,
            "end": 10.0,
            "category": "waterfall burbling",
            "labels": [3],
        },
        {
            "path": str(vgg["videos"] / "-0dQcxNrbgI_000000.mp4"),
            "id": "-0dQcxNrbgI_000000",
            "start": 0.0,
            "end": 10.0,
            "category": "female speech, woman speaking",
            "labels": [0],
        },
    ]
    sources, classes = read_inputs(out)  # ingest reads it; labels are indices already
    assert classes is None and sources[1].clips[0].labels == (0,)


def test_class_list_subset_untrimmed_and_captions(vgg, tmp_path):
    music = tmp_path / "music.txt"
    music.write_text("playing tennis\npeople marching\n")
    captions = tmp_path / "captions.csv"
    captions.write_text('id,caption\n--0PQM4-hqg_000120,"a ball, hit twice"\n')
    out = tmp_path / "test.jsonl"
    summary = convert(
        vgg["csv"],
        vgg["videos"],
        out,
        split="test",
        pattern="{ytid}.mp4",
        class_list=music,
        captions=captions,
        untrimmed=True,
        check_videos=False,
    )
    assert summary["clips"] == 2 and summary["other_classes"] == 0 and summary["classes"] == 2
    got = rows(out)
    assert [(r["id"], r["labels"], r["start"], r["end"]) for r in got] == [
        ("---g-f_I2yQ_000001", [1], 1.0, 11.0),  # numbered in the list's order
        ("--0PQM4-hqg_000120", [0], 120.0, 130.0),
    ]
    assert got[1]["path"] == str(vgg["videos"] / "--0PQM4-hqg.mp4")
    assert got[1]["caption"] == "a ball, hit twice" and "caption" not in got[0]
    assert classes_path(out).read_text() == "playing tennis\npeople marching\n"
    train = tmp_path / "t.jsonl"
    summary = convert(vgg["csv"], vgg["videos"], train, "train", class_list=music)
    assert summary["other_classes"] == 2 and summary["missing_videos"] == 1


def test_found_by_stem_elsewhere_under_the_folder(vgg, tmp_path):
    out = tmp_path / "test.jsonl"
    convert(vgg["csv"], vgg["videos"], out, split="test")
    assert rows(out)[1]["path"] == str(vgg["videos"] / "sub" / "--0PQM4-hqg_000120.mkv")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("abc,30,dog barking\n", r"bad\.csv:6: 3 columns, expected 4"),
        ("abc,x,dog barking,train\n", r"bad\.csv:6: start 'x' is not a number"),
        ("abc,30,dog barking,val\n", r"bad\.csv:6: split 'val'"),
    ],
)
def test_bad_rows_name_file_and_line(vgg, tmp_path, line, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV + line)
    with pytest.raises(ValueError, match=message):
        convert(bad, vgg["videos"], tmp_path / "o.jsonl")


def test_main(vgg, tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    argv = [str(vgg["csv"]), "--videos", str(vgg["videos"]), "--out", str(out)]
    assert main([*argv, "--split", "test"]) == 0
    assert json.loads(capsys.readouterr().out)["clips"] == 2
    assert main([*argv, "--pattern", "{nope}.mp4"]) == 2
    assert "not a format string" in capsys.readouterr().err
