"""A tiny ablation end to end: two data scales on the tiny world, one probe, grouped W&B runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from avpretrain.ablation.cli import main
from avpretrain.training.wandb_offline import read_records, read_run_info

# 96 fbank frames (about 1 s) and batches of 4 keep each step cheap on a loaded CPU
SHAPES = {"audio_shape": [128, 96], "video_size": 32}
DATA = {
    "data.init_args.num_workers": 0,
    "data.init_args.batch_size": 4,
    "data.init_args.frame_size": 32,
    "data.init_args.fbank.target_frames": 96,
}


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared, loaded CPU the thread pool's hand-offs cost more than
    these tiny ops (the test ran 4x faster)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_grid(world: Path, out: Path) -> Path:
    """Two uncurated scales (4 and 8 clips), 2 pretraining steps, a one-epoch linear probe."""
    grid = {
        "name": "e2e",
        "out": str(out),
        "data": {
            "pool": str(world / "train"),
            "probe_train": str(world / "val"),
            "probe_val": str(world / "val"),
        },
        "axes": {"scale": [4, 8], "curated": [False]},
        "shard_size": 4,
        "pretrain": {
            "recipe": "configs/pretrain/tiny.yaml",
            "budget": {"max_steps": 2},
            "overrides": {
                **DATA,
                "data.init_args.epoch_samples": 8,
                "data.init_args.shuffle_buffer": 4,
                "model.init_args.warmup_steps": 1,
                "trainer.log_every_n_steps": 1,
                "trainer.callbacks": [],
                **{f"model.init_args.model.init_args.{k}": v for k, v in SHAPES.items()},
            },
        },
        "probes": [
            {
                "name": "classification",
                "recipe": "tasks/classification/synth_linear.yaml",
                "budget": {"max_epochs": 1},
                "metrics": ["val/acc"],
                "overrides": {
                    **DATA,
                    "data.init_args.num_classes": 4,
                    "model.init_args.head.init_args.num_classes": 4,
                    "trainer.log_every_n_steps": 1,
                },
            }
        ],
    }
    path = out.parent / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def test_two_scale_ablation_writes_table_plot_and_grouped_runs(tiny_world, tmp_path, one_thread):
    grid = tiny_grid(tiny_world, tmp_path / "abl")
    assert main(["--grid", str(grid)]) == 0
    out = tmp_path / "abl"
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [int(r["clips"]) for r in rows] == [4, 8]
    assert all(0.0 <= float(r["classification/val/acc"]) <= 1.0 for r in rows)
    assert (out / "summary.md").read_text().count("\n") == 4  # header, rule, two rows
    assert (out / "scaling.png").stat().st_size > 0
    runs = sorted(out.glob("runs/*/*/**/offline-run-*/run-*.wandb"))
    assert len(runs) == 4  # per point: pretraining and the probe
    infos = [read_run_info(r.parent) for r in runs]
    assert {i["group"] for i in infos} == {"e2e"}
    for run, info in zip(runs, infos, strict=True):
        ablation = info["config"]["ablation"]
        assert ablation["scale"] in (4, 8) and ablation["clips"] == ablation["scale"]
        assert ablation["grid"] == "e2e" and ablation["criteria"] is None
        # the module's hyperparameters follow as config updates (the reader's part)
        assert read_records(run.parent)["config"]
        assert ablation["curated"] is False
        probe = "/classification" in info["name"]
        assert ("val/acc" if probe else "train/loss") in info["summary"], info
    results = {int(r["clips"]): float(r["classification/val/acc"]) for r in rows}
    for point in out.glob("runs/*/result.json"):
        result = json.loads(point.read_text())
        assert result["metrics"]["classification"]["val/acc"] == results[result["clips"]]
        assert result["metrics"]["pretrain"]["global_step"] == 2
