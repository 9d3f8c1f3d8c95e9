"""SFQA converter on a tiny CSV in the documented layout; grouped folds never share a source."""

import json
from pathlib import Path

import pytest

from avpretrain.converters.sfqa import convert, main, source_groups

HEADER = "video,source_image,source_audio,visual_mos,consistency_mos,method"
# portraits p1..p4 and music m1..m4; components {p1, p2, m1, m2} (via v1-v3) and singletons
ROWS = [
    "v1.mp4,p1,m1,71.5,60.25,SadTalker",
    "v2.mp4,p1,m2,40,55,Wav2Lip",
    "v3.mp4,p2,m2,33.3,20,SadTalker",
    "v4.mp4,p3,m3,80,90,Hallo",
    "v5.mp4,p4,m4,10,12.5,",
    "v6.mp4,p5,m5,50,50,Hallo",
]


def _csv(tmp_path: Path, rows=ROWS, header=HEADER) -> Path:
    path = tmp_path / "sfqa.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    folder = tmp_path / "videos"
    (folder / "sub").mkdir(parents=True)
    for row in ROWS:
        name = row.split(",")[0]
        if name != "v6.mp4":  # not downloaded
            (folder / "sub" / name).write_bytes(b"")
    return folder


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_exact_rows(tmp_path, videos):
    out = tmp_path / "sfqa.jsonl"
    summary = convert(_csv(tmp_path), videos, out, folds=2)
    assert summary == {
        "videos": 5,
        "missing_videos": 1,
        "groups": 4,
        "fold_sizes": summary["fold_sizes"],
        "out": str(out),
    }
    rows = _rows(out)
    assert rows[0] == {
        "path": str(videos / "sub" / "v1.mp4"),
        "id": "v1",
        "start": 0.0,
        "category": "SadTalker",
        "annotations": {
            "mos": {"visual": 71.5, "consistency": 60.25},
            "source_image": "p1",
            "source_audio": "m1",
            "method": "SadTalker",
            "group": "image:p1",
            "fold": rows[0]["annotations"]["fold"],
        },
    }
    assert "category" not in rows[4] and "method" not in rows[4]["annotations"]  # empty method
    assert [r["annotations"]["group"] for r in rows] == ["image:p1"] * 3 + ["image:p3", "image:p4"]
    assert sum(summary["fold_sizes"]) == 5


def _sources_per_fold(rows: list[dict], key: str) -> dict[str, set[int]]:
    folds: dict[str, set[int]] = {}
    for row in rows:
        folds.setdefault(row["annotations"][key], set()).add(row["annotations"]["fold"])
    return folds


@pytest.mark.parametrize("seed", range(4))
def test_grouped_folds_never_share_a_source(tmp_path, videos, seed):
    out = tmp_path / "sfqa.jsonl"
    convert(_csv(tmp_path), videos, out, folds=3, seed=seed)
    rows = _rows(out)
    for key in ("source_image", "source_audio"):
        assert all(len(f) == 1 for f in _sources_per_fold(rows, key).values()), key
    # by image only: portraits stay in one fold, while music m2 may now straddle folds
    convert(_csv(tmp_path), videos, out, folds=3, seed=seed, group_by="image")
    assert all(len(f) == 1 for f in _sources_per_fold(_rows(out), "source_image").values())


def test_source_groups_connected_components():
    images = ["a", "a", "b", "c", "d"]
    audios = ["x", "y", "y", "z", "x"]  # a-x-d and a-y-b join: {a, b, d}; c alone
    assert source_groups(images, audios) == ["image:a", "image:a", "image:a", "image:c", "image:a"]
    assert source_groups(images, audios, "audio") == [f"audio:{a}" for a in audios]
    with pytest.raises(ValueError, match="group_by"):
        source_groups(images, audios, "method")


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (
            ROWS,
            "video,source_image,visual_mos,consistency_mos",
            r"missing column\(s\) \['source_audio'\]",
        ),
        (["v1.mp4,p1,m1,good,3,"], HEADER, r"sfqa.csv:2: visual_mos 'good' is not a number"),
        (["v1.mp4,p1,m1,1,nan,"], HEADER, r"sfqa.csv:2: consistency_mos 'nan' is not finite"),
        (["v1.mp4,,m1,1,2,"], HEADER, r"sfqa.csv:2: empty source_image"),
        (ROWS[:2] + ["v1.mkv,p9,m9,1,2,x"], HEADER, r"sfqa.csv:4: video v1.mkv already listed"),
        (ROWS[:3], HEADER, r"grouping by 'both' leaves 1 group.*try --group-by image"),
    ],
)
def test_clear_errors(tmp_path, videos, rows, header, message):
    with pytest.raises(ValueError, match=message):
        convert(_csv(tmp_path, rows, header), videos, tmp_path / "o.jsonl", folds=2)


def test_main_exit_codes(tmp_path, videos, capsys):
    out = tmp_path / "o.jsonl"
    assert main([str(_csv(tmp_path)), "--videos", str(videos), "--out", str(out)]) == 2
    assert "fewer than 5 folds" in capsys.readouterr().err  # 4 groups
    argv = [str(_csv(tmp_path)), "--videos", str(videos), "--out", str(out), "--folds", "2"]
    assert main([*argv, "--group-by", "image"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"] == 5
    assert len(_rows(out)) == 5
