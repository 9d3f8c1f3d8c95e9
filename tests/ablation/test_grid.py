"""Grid files: expansion counts and values, defaults, and clear errors for bad or missing keys."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from avpretrain.ablation.grid import GridError, load_grid, parse_criteria

ROOT = Path(__file__).resolve().parents[2]


def grid_file(tmp_path: Path, **changes) -> Path:
    raw = {
        "name": "g",
        "data": {"pool": "pool", "scores": "scores"},
        "axes": {
            "scale": [10, 20, 0.5],
            "curated": [True, False],
            "threshold": [0.25, 0.75],
            "criteria": ["instance+temporal+language", ["language", "instance"]],
        },
        "pretrain": {"recipe": "configs/pretrain/tiny.yaml", "budget": {"max_steps": 5}},
        "probes": [
            {
                "name": "cls",
                "recipe": "tasks/classification/synth_linear.yaml",
                "budget": {"max_epochs": 1},
            }
        ],
    }
    for key, value in changes.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_expansion_counts_and_values(tmp_path):
    points = load_grid(grid_file(tmp_path)).points()
    # curated: 3 scales x 2 thresholds x 2 criteria; uncurated: one per scale
    assert len(points) == 3 * 2 * 2 + 3
    assert [p.index for p in points] == list(range(15))
    curated = {(p.scale, p.threshold, p.criteria) for p in points if p.curated}
    expected = itertools.product(
        [10, 20, 0.5],
        [0.25, 0.75],
        [("instance", "temporal", "language"), ("instance", "language")],
    )
    assert curated == set(expected)
    raw = [p for p in points if not p.curated]
    assert [(p.scale, p.threshold, p.criteria) for p in raw] == [
        (10, None, None),
        (20, None, None),
        (0.5, None, None),
    ]
    assert points[0].name == "000_n10_cur_t0.25_instance+temporal+language"
    assert raw[-1].name == "014_f0.5_raw"
    assert raw[0].values() == {"scale": 10, "curated": False, "threshold": None, "criteria": None}


def test_shipped_grids_parse():
    paper = load_grid(ROOT / "configs" / "ablate" / "paper.yaml")
    assert sorted(paper.axes.scale) == [10000, 52000, 100000, 199000, 1000000]
    assert paper.axes.thresholds() == [0.25, 0.5, 0.75]
    assert len(paper.points()) == 5 * 3 * 4 + 5


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "ablate").glob("*.yaml")), ids=str)
def test_every_grid_parses_with_existing_recipes(path):
    grid = load_grid(path)
    assert grid.points() and grid.pretrain.recipe.exists()
    assert grid.probes and all(p.recipe.exists() for p in grid.probes)


def test_uncurated_only_grid_needs_no_scores(tmp_path):
    path = grid_file(tmp_path, data={"pool": "p"}, axes={"scale": [4, 8]})
    points = load_grid(path).points()
    assert [(p.scale, p.curated) for p in points] == [(4, False), (8, False)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pretrain": None}, "required: pretrain.recipe"),
        (
            {"probes": [{"recipe": "tasks/retrieval/synth.yaml", "budget": {"max_epochs": 1}}]},
            "required: name",
        ),
        ({"data": {"scores": "s"}}, "required: data.pool"),
        ({"data": {"pool": "p"}}, "missing key data.scores"),
        ({"axes": {"curated": [False]}}, "required: axes.scale"),
        ({"axes": {"scale": [0]}}, "clip count must be >= 1"),
        ({"axes": {"scale": [1.5]}}, "fraction must be in (0, 1]"),
        ({"axes": {"scale": [4], "curated": [True], "threshold": [0.5]}}, "axes.criteria"),
        ({"axes": {"scale": [4], "size": [1]}}, "'axes' does not accept option 'size'"),
        (
            {"pretrain": {"recipe": "nope.yaml", "budget": {"max_steps": 1}}},
            "recipe: recipe 'nope.yaml': no such file",
        ),
        (
            {"pretrain": {"recipe": "configs/pretrain/tiny.yaml", "budget": {"steps": 1}}},
            "'pretrain' does not accept option 'budget.steps'",
        ),
        ({"threshold_mode": "rank"}, "threshold_mode"),
    ],
)
def test_bad_grid_names_file_and_key(tmp_path, changes, message):
    path = grid_file(tmp_path, **changes)
    with pytest.raises(GridError) as err:
        load_grid(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_criteria_parse_in_paper_order():
    assert parse_criteria("language+instance") == ("instance", "language")
    assert parse_criteria("none") == () and parse_criteria([]) == ()
    with pytest.raises(ValueError, match="visual"):
        parse_criteria("instance+visual")
