"""Cluster mode: the W&B sweep config, the SLURM array script, and points by index or values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from avpretrain.ablation.cli import main
from avpretrain.ablation.grid import load_grid

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "configs" / "ablate" / "paper.yaml"


def test_emit_sweep_writes_grid_sweep_and_slurm_array(tmp_path):
    out = tmp_path / "abl"
    assert main(["--grid", str(PAPER), "--out", str(out), "--emit-sweep", str(tmp_path / "c")]) == 0
    sweep = yaml.safe_load((tmp_path / "c" / "sweep.yaml").read_text())
    assert sweep["method"] == "grid" and sweep["program"] == "avpretrain"
    params = sweep["parameters"]
    assert params["scale"]["values"] == [10000, 52000, 100000, 199000, 1000000]
    assert params["threshold"]["values"] == [0.25, 0.5, 0.75]
    assert params["curated"]["values"] == [True, False]
    assert "instance+temporal+language" in params["criteria"]["values"]
    assert sweep["command"] == [
        "${program}",
        "ablate",
        "--grid",
        str(PAPER),
        "--out",
        str(out.resolve()),
        "--run-one",
        "${args}",
    ]
    script = (tmp_path / "c" / "ablate.sbatch").read_text()
    count = len(load_grid(PAPER).points())
    assert count == 65
    assert "#SBATCH --array=0-64\n" in script
    assert "#SBATCH --gres=gpu:8\n" in script  # the grid's sbatch options
    assert f"#SBATCH --output={out.resolve()}/slurm/%A_%a.out" in script
    last = script.strip().splitlines()[-1]
    assert last == (
        f"avpretrain ablate --grid {PAPER} --out {out.resolve()} --index $SLURM_ARRAY_TASK_ID"
    )
    assert (out / "slurm").is_dir()


def test_run_one_finds_the_point_of_sweep_arguments(monkeypatch):
    ran = []
    monkeypatch.setattr("avpretrain.ablation.cli.run_point", lambda g, p, force: ran.append(p))
    args = [
        "--grid",
        str(PAPER),
        "--run-one",
        "--scale=52000",
        "--curated=True",
        "--threshold=0.75",
        "--criteria=instance+language",
    ]
    assert main(args) == 0
    (point,) = ran
    assert (point.scale, point.threshold, point.criteria) == (52000, 0.75, ("instance", "language"))
    # an uncurated sweep point ignores threshold and criteria
    assert (
        main(
            [
                "--grid",
                str(PAPER),
                "--run-one",
                "--scale=10000",
                "--curated=False",
                "--threshold=0.25",
                "--criteria=instance",
            ]
        )
        == 0
    )
    assert ran[-1].name == "060_n10000_raw"
    assert main(["--grid", str(PAPER), "--index", "61"]) == 0
    assert ran[-1].name == "061_n52000_raw"


@pytest.mark.parametrize(
    "args",
    [["--index", "65"], ["--run-one", "--scale=7", "--curated=false"], ["--run-one"]],
)
def test_bad_point_selection_is_an_error(args, capsys):
    assert main(["--grid", str(PAPER), *args]) == 2
    assert "avpretrain ablate:" in capsys.readouterr().err
