"""scripts/bench_heads.py: the verdict rule, recipe overrides, and one task end to end."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

from .tasks.helpers import tiny_encoders

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPTS))  # the script imports chance_levels beside it
    try:
        spec = importlib.util.spec_from_file_location("bench_heads", SCRIPTS / "bench_heads.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SCRIPTS))


def test_verdict_needs_a_margin_beyond_the_spread_and_the_level(bench):
    pre, rand = [0.5, 0.6, 0.7], [0.2, 0.3, 0.4]  # means 0.6 and 0.3, both stds 0.1
    assert bench.verdict(pre, rand, 0.125) == "yes"
    assert bench.verdict(pre, rand, None) == "yes"
    assert bench.verdict(pre, rand, 0.65) == "no"  # below the chance / baseline level
    assert bench.verdict([0.2, 0.5, 0.8], rand, None) == "no"  # margin 0.2 < the larger std 0.3
    assert bench.verdict([0.9], [0.1], None) == "n/a"  # one seed: no spread, no verdict
    assert bench.mean_std(pre) == "0.600 ± 0.100"
    row = bench.table_row(("classification", "val/acc", pre, rand, 0.125))
    assert row == "| classification | val/acc | 0.600 ± 0.100 | 0.300 ± 0.100 | 0.125 | yes |"


def test_set_key_writes_yaml_values_along_a_dotted_path(bench):
    cfg = {"model": {"init_args": {"mask_threshold": 0.5}}}
    bench.set_key(cfg, "model.init_args.mask_threshold=null")
    bench.set_key(cfg, "model.init_args.head={channels: [8, 16]}")
    assert cfg == {"model": {"init_args": {"mask_threshold": None, "head": {"channels": [8, 16]}}}}
    with pytest.raises(SystemExit, match="no mapping at 'data'"):
        bench.set_key(cfg, "data.init_args.batch_size=8")
    with pytest.raises(SystemExit, match="dotted.key=value"):
        bench.set_key(cfg, "model.init_args.lr")


def test_a_world_without_answers_stops_before_training(bench, tiny_world, tmp_path):
    world = tmp_path / "world"
    world.mkdir()
    for split in ("train", "val"):
        (world / split).symlink_to(tiny_world / split)
    with pytest.raises(SystemExit, match="answers.json"):
        bench.load_recipe("music_avqa/synth.yaml", world)
    assert bench.load_recipe("music_avqa/synth.yaml", tiny_world)["model"]["init_args"][
        "answers"
    ] == str(tiny_world / "answers.json")


def test_classification_on_the_tiny_world_prints_its_row(bench, tiny_world, tmp_path, capsys):
    encoders = tiny_encoders(tmp_path / "enc.pt", audio_shape=[128, 288], video_size=64)
    runs = tmp_path / "runs"
    args = ["--world", str(tiny_world), "--encoders", str(encoders), "--seeds", "2"]
    args += ["--max-steps", "2", "--tasks", "classification", "--runs-dir", str(runs)]
    bench.main([*args, "--set", "data.init_args.batch_size=8"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| class")]
    assert len(rows) == 2  # printed when the task ends, and in the final table
    cells = [c.strip() for c in rows[-1].strip("|").split("|")]
    assert cells[:2] == ["classification", "val/acc"] and cells[4] == "0.250"  # 4 classes
    for cell in cells[2:4]:
        mean, std = (float(x) for x in cell.split(" ± "))
        assert 0.0 <= mean <= 1.0 and std >= 0.0
    assert cells[5] in ("yes", "no")
    names = {p.name for p in (runs / "classification").iterdir()}
    assert names == {"pretrained-seed0", "pretrained-seed1", "random-seed0", "random-seed1"}
    for seed in (0, 1):  # each seed draws its own random encoders
        recipe = yaml.safe_load(
            (runs / f"classification/random-seed{seed}/recipe.yaml").read_text()
        )
        assert recipe["model"]["init_args"]["seed"] == seed
        assert recipe["model"]["init_args"]["encoders"] is None
