"""``avpretrain mos``: raw rating tables -> the MOS tables the converters read."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from avpretrain.av_quality.opinion import screen_yt_ntu_avq, sfqa_mos
from avpretrain.cli import main
from avpretrain.converters import sfqa, yt_ntu_avq

ITEMS = [f"Clip_{i}.mp4" for i in range(5)]
BASE = [1.2, 2.0, 3.1, 4.0, 4.8]


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def yt_rows() -> list[dict]:
    """s1, s2 agree with the truth; s3 rates everything 3 (no rank, no spread); s4 leaves the
    1-5 scale once (an invalid submission)."""
    rows = []
    for sub, offset in (("s1", 0.0), ("s2", 0.3), ("s3", None), ("s4", 0.1)):
        for dim in ("overall", "video", "audio"):
            for k, item in enumerate(ITEMS):
                rating = (
                    3.0 if offset is None else min(5.0, BASE[k] + offset + 0.1 * (dim == "audio"))
                )
                if sub == "s4" and k == 0 and dim == "audio":
                    rating = 7.0
                rows.append({"submission": sub, "item": item, "dimension": dim, "rating": rating})
    return rows


def test_yt_ntu_avq_writes_the_meta_info_the_converter_reads(tmp_path, capsys):
    ratings = write_csv(tmp_path / "ratings.csv", yt_rows())
    out = tmp_path / "meta.csv"
    assert main(["mos", "yt-ntu-avq", str(ratings), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kept 2 of 4 submissions" in printed and "1 invalid_rating" in printed
    assert "MOS of 5 items" in printed
    # independent reference: plain means of the two kept submissions
    raw = pd.DataFrame(yt_rows())
    kept = raw[raw["submission"].isin(["s1", "s2"])]
    expected = kept.groupby(["item", "dimension"])["rating"].mean()
    for where, row in yt_ntu_avq.read_meta(out):
        annotations = yt_ntu_avq.annotations_of(row, where)
        for dim in ("overall", "video", "audio"):
            assert annotations["mos"][dim] == pytest.approx(
                expected[row["seq_name"], dim], abs=1e-5
            )
    report = pd.read_csv(tmp_path / "meta_screening.csv").set_index("submission")
    assert report.loc["s3", "reason"] == "low_srocc+low_std"
    assert list(report["kept"]) == [True, True, False, False]


def test_yt_ntu_avq_matches_the_library_and_carries_the_published_columns(tmp_path):
    ratings = write_csv(tmp_path / "ratings.csv", yt_rows())
    meta = write_csv(
        tmp_path / "published.csv",
        [
            {"seq_name": item, "score_all": "9", "video_class": f"class {i}"}
            for i, item in enumerate(ITEMS)
        ],
    )
    out = tmp_path / "meta.csv"
    assert main(["mos", "yt-ntu-avq", str(ratings), "--out", str(out), "--meta", str(meta)]) == 0
    table = pd.read_csv(out).set_index("seq_name")
    assert list(table["video_class"]) == [f"class {i}" for i in range(5)]
    mos = screen_yt_ntu_avq(pd.DataFrame(yt_rows())).mos.set_index(["item", "dimension"])
    for item in ITEMS:  # the recomputed score replaces the published one
        assert table.at[item, "score_all"] == pytest.approx(
            mos.at[(item, "overall"), "mos"], abs=1e-5
        )
        assert table.at[item, "std_a"] == pytest.approx(mos.at[(item, "audio"), "std"], abs=1e-5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rating": "4,5"}, "ratings.csv:3: column rating: '4,5' is not a number"),
        ({"dimension": "colour"}, "ratings.csv:3: column dimension: 'colour' is not one of"),
        ({"item": " "}, "ratings.csv:3: column item is empty"),
    ],
)
def test_bad_cells_name_file_line_and_column(tmp_path, capsys, change, message):
    rows = yt_rows()
    rows[1].update(change)
    ratings = write_csv(tmp_path / "ratings.csv", rows)
    assert main(["mos", "yt-ntu-avq", str(ratings), "--out", str(tmp_path / "m.csv")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()


def test_missing_column_is_named(tmp_path, capsys):
    rows = [{k: v for k, v in r.items() if k != "submission"} for r in yt_rows()]
    ratings = write_csv(tmp_path / "ratings.csv", rows)
    assert main(["mos", "yt-ntu-avq", str(ratings), "--out", str(tmp_path / "m.csv")]) == 2
    assert "missing column(s) ['submission']" in capsys.readouterr().err


def sfqa_rows() -> list[dict]:
    """Six subjects rate four videos on both dimensions; s6 inverts the order on ``visual``."""
    rows = []
    truth = [20.0, 40.0, 60.0, 80.0]
    for s in range(6):
        for dim in ("visual", "consistency"):
            for k, video in enumerate(["a.mp4", "b.mp4", "c.mp4", "d.mp4"]):
                rating = truth[k] + 3 * s + (k % 2)
                if s == 5 and dim == "visual":
                    rating = 100 - truth[k]
                rows.append(
                    {
                        "subject": f"s{s}",
                        "item": video,
                        "dimension": dim,
                        "rating": rating,
                        "source_image": f"img{k % 2}",
                        "source_audio": f"song{k // 2}",
                        "method": "m1",
                    }
                )
    return rows


def test_sfqa_writes_the_layout_convert_sfqa_reads(tmp_path, capsys):
    ratings = write_csv(tmp_path / "ratings.csv", sfqa_rows())
    out = tmp_path / "sfqa.csv"
    assert main(["mos", "sfqa", str(ratings), "--out", str(out)]) == 0
    assert "of 12 subject-dimensions" in capsys.readouterr().out
    tidy = pd.DataFrame(sfqa_rows())[["subject", "item", "dimension", "rating"]]
    expected = sfqa_mos(tidy).mos.set_index(["item", "dimension"])["mos"]
    rows = sfqa.read_rows(out)
    assert [row["video"] for _, row in rows] == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    for where, row in rows:
        assert row["source_image"] and row["method"] == "m1"
        for dim in ("visual", "consistency"):
            assert sfqa._mos(row, f"{dim}_mos", where) == pytest.approx(
                expected[row["video"], dim], abs=1e-4
            )


def test_sfqa_sources_from_a_videos_table_and_conflicts(tmp_path, capsys):
    rows = [{k: r[k] for k in ("subject", "item", "dimension", "rating")} for r in sfqa_rows()]
    ratings = write_csv(tmp_path / "ratings.csv", rows)
    out = tmp_path / "sfqa.csv"
    assert main(["mos", "sfqa", str(ratings), "--out", str(out)]) == 2
    assert "no --videos table" in capsys.readouterr().err
    videos = write_csv(
        tmp_path / "videos.csv",
        [
            {"video": v, "source_image": "i", "source_audio": f"a{v}"}
            for v in ["a.mp4", "b.mp4", "c.mp4"]
        ],
    )
    assert main(["mos", "sfqa", str(ratings), "--out", str(out), "--videos", str(videos)]) == 2
    assert "no sources for video(s) ['d.mp4']" in capsys.readouterr().err
    conflicting = sfqa_rows()
    conflicting[5]["source_image"] = "other"
    ratings = write_csv(tmp_path / "ratings.csv", conflicting)
    assert main(["mos", "sfqa", str(ratings), "--out", str(out)]) == 2
    assert "ratings.csv:7: video b.mp4 has sources" in capsys.readouterr().err


def test_hidden_references_drop_far_ratings_first(tmp_path, capsys):
    rows = sfqa_rows()
    reference = write_csv(
        tmp_path / "ref.csv", [{"item": "a.mp4", "level": 1, "dimension": "visual"}]
    )
    ratings = write_csv(tmp_path / "ratings.csv", rows)
    out = tmp_path / "sfqa.csv"
    assert (
        main(["mos", "sfqa", str(ratings), "--out", str(out), "--reference", str(reference)]) == 0
    )
    # a.mp4 visual: s0-s4 rate 20-32 (level 1), s5 rates 80 (level 4, 3 levels away)
    assert "dropped 1 rating(s)" in capsys.readouterr().out
    bad = write_csv(tmp_path / "ref.csv", [{"item": "a.mp4", "level": 5}])
    assert main(["mos", "sfqa", str(ratings), "--out", str(out), "--reference", str(bad)]) == 2
    assert "ref.csv:2: column level: '5' is not a level 0-4" in capsys.readouterr().err
