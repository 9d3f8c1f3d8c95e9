"""YT-NTU-AVQ converter on a tiny CSV with the published meta_info header."""

import json
import logging
from collections import Counter
from pathlib import Path

import pytest

from avpretrain.cli import main as cli_main
from avpretrain.converters.yt_ntu_avq import convert
from avpretrain.data.folds import assign_folds
from avpretrain.data.ingest.manifest import read_inputs

HEADER = (
    "seq_name,score_all,score_v,score_a,av_weight,std_all,std_v,std_a,std_av_weight,pretest,"
    "manual_selected,audio_category_id,video_summary,video_category_id,video_class,audio_class"
)
ROWS = [
    'Animation_1.mp4,1.75,1.57,1.93,47.08,0.74,0.65,0.87,15.68,0,0,0|1,"A character flips, '
    'then jumps.",9,Animation and gaming,Speech|Music',
    "Sports_1.mp4,1.76,1.57,1.89,44.72,0.79,0.67,0.87,15.37,0,0,0|1|2,A man rides a horse.,"
    "5,Sports,Speech|Music|Sound",
    "Dance_1.mp4,1.76,1.60,1.75,46.41,0.69,0.54,0.86,12.39,0,0,1|2,Dancers on a stage.,7,Dance,"
    "Music|Sound",
    "Music_1.mp4,1.90,1.65,2.07,43.51,0.70,0.60,0.78,17.05,1,0,0|1,Men sing in the street.,8,"
    "Music performance,Speech|Music",
    "Dog_1.mp4,2.02,1.86,1.97,49.53,0.86,0.83,0.92,12.36,0,1,2,A black dog tears paper.,2,Animal,"
    "Sound",
    "Dynamic_100.mp4,3.36,3.15,3.38,48.18,0.80,0.85,0.87,12.97,0,0,1,Bells swing.,1,"
    "Dynamic object,Music",
]


@pytest.fixture
def dataset(tmp_path: Path) -> dict[str, Path]:
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    for row in ROWS:
        name = row.split(",")[0]
        if name != "Dog_1.mp4":  # one sequence not downloaded
            target = videos / "sub" / name if name.startswith("Dance") else videos / name
            target.write_bytes(b"")
    meta = tmp_path / "meta_info_YT-NTU-AVQ.csv"
    meta.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    return {"meta": meta, "videos": videos, "out": tmp_path / "manifest.jsonl"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_manifest_rows(dataset, caplog):
    with caplog.at_level(logging.WARNING):
        summary = convert(dataset["meta"], dataset["videos"], dataset["out"], folds=3)
    assert summary["videos"] == 5 and summary["missing_videos"] == 1
    assert "Dog_1.mp4" in caplog.text
    rows = {r["id"]: r for r in read_jsonl(dataset["out"])}
    first = rows["Animation_1"]
    assert first["path"] == str(dataset["videos"] / "Animation_1.mp4")
    assert (first["start"], first["end"]) == (0.0, 10.0)
    assert first["caption"] == "A character flips, then jumps."
    assert first["category"] == "Animation and gaming"
    ann = first["annotations"]
    assert ann["mos"] == {"overall": 1.75, "video": 1.57, "audio": 1.93, "av_weight": 47.08}
    assert ann["std"] == {"overall": 0.74, "video": 0.65, "audio": 0.87, "av_weight": 15.68}
    assert ann["audio_category_id"] == [0, 1]
    assert ann["audio_class"] == ["Speech", "Music"]
    assert ann["video_category_id"] == 9
    assert (ann["pretest"], ann["manual_selected"]) == (0, 0)
    assert rows["Dance_1"]["path"].endswith("sub/Dance_1.mp4")
    assert rows["Dynamic_100"]["annotations"]["audio_category_id"] == [1]


def test_folds_are_deterministic_balanced_and_survive_missing_videos(dataset, tmp_path):
    convert(dataset["meta"], dataset["videos"], dataset["out"], folds=3, seed=7)
    folds = {r["id"]: r["annotations"]["fold"] for r in read_jsonl(dataset["out"])}
    # the full set (nothing missing, paths unchecked) deals the same folds
    full = tmp_path / "full.jsonl"
    convert(dataset["meta"], dataset["videos"], full, folds=3, seed=7, check_videos=False)
    full_folds = {r["id"]: r["annotations"]["fold"] for r in read_jsonl(full)}
    assert {k: full_folds[k] for k in folds} == folds
    assert sorted(Counter(full_folds.values()).values()) == [2, 2, 2]
    assert assign_folds([str(i) for i in range(6)], 3, 7) == list(full_folds.values())


def test_assign_folds_by_hand():
    # 10 singleton groups over 5 folds: a round robin over a permutation -> 2 per fold
    folds = assign_folds([f"v{i}" for i in range(10)], folds=5, seed=0)
    assert sorted(Counter(folds).values()) == [2] * 5
    assert folds == assign_folds([f"v{i}" for i in range(10)], folds=5, seed=0)
    assert folds != assign_folds([f"v{i}" for i in range(10)], folds=5, seed=1)
    # groups stay together; the largest group (3 items) goes first, to fold 0
    groups = ["a", "a", "a", "b", "c", "c", "d"]
    g_folds = assign_folds(groups, folds=2, seed=0)
    by_group = {g: {f for gg, f in zip(groups, g_folds, strict=True) if gg == g} for g in groups}
    assert all(len(fs) == 1 for fs in by_group.values())
    assert by_group["a"] == {0}
    # a (3) -> fold 0; c (2) -> fold 1 (load 2 < 3); the first singleton -> fold 1 (2 < 3),
    # the second -> fold 0 on the 3-3 tie (lowest index)
    assert Counter(g_folds) == {0: 4, 1: 3}
    with pytest.raises(ValueError, match="cannot fill"):
        assign_folds(["a", "a"], folds=2)


def test_group_column(dataset, tmp_path):
    meta = tmp_path / "grouped.csv"
    lines = dataset["meta"].read_text(encoding="utf-8").splitlines()
    sources = ["s1", "s1", "s2", "s2", "s3", "s3"]
    meta.write_text(
        "\n".join(
            [lines[0] + ",source"] + [f"{r},{s}" for r, s in zip(lines[1:], sources, strict=True)]
        )
        + "\n",
        encoding="utf-8",
    )
    convert(
        meta, dataset["videos"], dataset["out"], folds=3, group_column="source", check_videos=False
    )
    folds = [r["annotations"]["fold"] for r in read_jsonl(dataset["out"])]
    assert folds[0] == folds[1] and folds[2] == folds[3] and folds[4] == folds[5]
    assert len(set(folds)) == 3
    with pytest.raises(ValueError, match="no column 'content'"):
        convert(meta, dataset["videos"], dataset["out"], group_column="content")


def test_manifest_feeds_ingest(dataset):
    convert(dataset["meta"], dataset["videos"], dataset["out"])
    sources, classes = read_inputs(dataset["out"])
    assert classes is None and len(sources) == 5
    clip = sources[0].clips[0]
    assert clip.video_id == "Animation_1" and (clip.start, clip.end) == (0.0, 10.0)
    assert clip.annotations["mos"]["overall"] == 1.75
    assert "fold" in clip.annotations


def test_cli_and_bad_input(dataset, tmp_path, capsys):
    args = ["convert-yt-ntu-avq", str(dataset["meta"]), "--videos", str(dataset["videos"])]
    assert cli_main([*args, "--out", str(dataset["out"]), "--clip-seconds", "0"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["videos"] == 5
    assert "start" not in read_jsonl(dataset["out"])[0]  # ingest cuts the clips
    assert cli_main([*args, "--out", str(dataset["out"]), "--folds", "1"]) == 2
    assert "folds must be >= 2" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\n" + ROWS[0].replace("1.75", "n/a", 1) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.csv:2: score_all 'n/a' is not a number"):
        convert(bad, dataset["videos"], dataset["out"], folds=2, check_videos=False)
    twice = tmp_path / "twice.csv"
    twice.write_text("\n".join([HEADER, ROWS[1], ROWS[1]]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="twice.csv:3: Sports_1.mp4 already listed"):
        convert(twice, dataset["videos"], dataset["out"], folds=2, check_videos=False)
    header_only = tmp_path / "other.csv"
    header_only.write_text("name,mos\nx.mp4,3\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['seq_name'"):
        convert(header_only, dataset["videos"], dataset["out"])
