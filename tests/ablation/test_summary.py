"""The summary table (Markdown, CSV) and the log-x scaling plot, from fake results."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from avpretrain.ablation.summary import scaling_figure, write_summary


def fake_result(index, clips, curated, acc, threshold=None, criteria=None) -> dict:
    return {
        "name": f"{index:03d}",
        "index": index,
        "scale": clips,
        "curated": curated,
        "threshold": threshold,
        "criteria": criteria,
        "clips": clips,
        "metrics": {
            "pretrain": {"train/loss": 1.0 / clips, "global_step": 5.0},
            "cls": {"val/acc": acc},
        },
    }


RESULTS = [
    fake_result(0, 100, True, 0.5, 0.5, "instance"),
    fake_result(1, 1000, True, 0.7, 0.5, "instance"),
    fake_result(2, 100, False, 0.4),
    fake_result(3, 1000, False, 0.6),
    fake_result(4, 10000, False, 0.65),
]


def write_results(out: Path, results: list[dict]) -> None:
    for r in results:
        folder = out / "runs" / r["name"]
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(r))


def test_table_lists_every_point_with_its_metrics(tmp_path):
    write_results(tmp_path, list(reversed(RESULTS)))  # read back in index order
    paths = write_summary(tmp_path)
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [int(r["index"]) for r in rows] == [0, 1, 2, 3, 4]
    assert list(rows[0]) == [
        "index",
        "scale",
        "clips",
        "curated",
        "threshold",
        "criteria",
        "pretrain/train/loss",
        "cls/val/acc",
    ]
    assert [float(r["cls/val/acc"]) for r in rows] == [0.5, 0.7, 0.4, 0.6, 0.65]
    assert rows[2]["threshold"] == "" and rows[0]["criteria"] == "instance"
    md = paths["markdown"].read_text().splitlines()
    assert len(md) == 2 + 5
    assert md[4] == "| 2 | 100 | 100 | False | - | - | 0.01 | 0.4 |"
    assert paths["plot"].stat().st_size > 1000


def test_plot_is_log_x_with_one_line_per_setting():
    fig = scaling_figure(RESULTS)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "cls/val/acc"
    lines = {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax.lines
    }
    assert lines == {
        "curated t=0.5 instance": ([100, 1000], [0.5, 0.7]),
        "uncurated": ([100, 1000, 10000], [0.4, 0.6, 0.65]),
    }
    plt.close(fig)


def test_nothing_to_collect_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished point"):
        write_summary(tmp_path)
