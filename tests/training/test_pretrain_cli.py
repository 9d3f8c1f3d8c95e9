"""Pretraining through the real CLI on synthetic shards: loss, logs, checkpoints, resume, DDP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.training.throughput import count_train_flops_per_sample
from avpretrain.training.wandb_offline import read_records

from .recipe import ROOT, tiny_recipe, write_recipe

HERE = Path(__file__).resolve().parent


def _env() -> dict[str, str]:
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def test_fit_lowers_loss_and_logs_to_wandb_offline(tiny_world, tmp_path):
    recipe = tiny_recipe(tiny_world, tmp_path / "run", max_steps=30)
    for callback in recipe["trainer"]["callbacks"]:
        if callback["class_path"].endswith("ModelCheckpoint"):
            callback["init_args"]["every_n_train_steps"] = 5  # 6 saves; the recipe keeps 3
    cfg = write_recipe(recipe, tmp_path / "c.yaml")
    cli = run_lightning_cli(["fit", "--config", str(cfg)])
    assert cli.trainer.global_step == 30
    cli.trainer.logger.experiment.finish()  # flush the offline run to disk
    history = read_records(tmp_path / "run")["history"]
    losses = [row["train/loss"] for row in history if "train/loss" in row]
    assert len(losses) >= 25
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.9 * first, (first, last)
    logged = set().union(*history)
    for key in ("train/loss_audio", "train/loss_video", "train/loss_contrastive", "train/lr"):
        assert key in logged
    for key in ("perf/samples_per_s", "perf/mfu", "perf/data_wait_share"):
        assert key in logged
    shares = [row["perf/data_wait_share"] for row in history if "perf/data_wait_share" in row]
    assert all(0.0 <= s <= 1.0 for s in shares)
    names = [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()]
    steps = sorted(int(re.search(r"step=(\d+)", n).group(1)) for n in names if n != "last.ckpt")
    assert "last.ckpt" in names and steps == [20, 25, 30], names  # the 3 newest of 6
    assert list((tmp_path / "run").glob("**/reconstructions/step*.png"))


def test_kill_and_resume_continues_from_saved_step(tiny_world, tmp_path):
    run = tmp_path / "run"
    cfg = tiny_recipe(tiny_world, run, max_steps=20)
    killer = {"class_path": "kill_callback.KillAtStep", "init_args": {"step": 14}}
    cfg["trainer"]["callbacks"].append(killer)
    path = write_recipe(cfg, tmp_path / "killed.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "avpretrain.cli", "fit", "--config", str(path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 17, proc.stderr[-2000:]  # killed hard at step 14
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 10  # the last checkpoint before the kill

    cfg["trainer"]["callbacks"][-1] = {"class_path": "kill_callback.StepRecorder"}
    path = write_recipe(cfg, tmp_path / "resume.yaml")
    sys.path.insert(0, str(HERE))
    try:
        cli = run_lightning_cli(["fit", "--config", str(path), "--ckpt_path", "last"])
    finally:
        sys.path.remove(str(HERE))
    recorder = next(c for c in cli.trainer.callbacks if type(c).__name__ == "StepRecorder")
    assert recorder.steps[0] == 10 and cli.trainer.global_step == 20
    assert len(recorder.steps) == 10  # only the missing steps were run


def test_two_process_ddp_fit_on_cpu(tiny_world, tmp_path):
    cfg = tiny_recipe(tiny_world, tmp_path / "run", max_steps=4)
    cfg["trainer"].update(strategy="ddp", devices=2, accelerator="cpu")
    path = write_recipe(cfg, tmp_path / "ddp.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "avpretrain.cli", "fit", "--config", str(path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 4


@pytest.mark.parametrize("recipe", sorted((ROOT / "configs" / "pretrain").glob("*.yaml")), ids=str)
def test_every_recipe_parses(recipe, capsys):
    with pytest.raises(SystemExit) as exc:
        run_lightning_cli(["fit", "--config", str(recipe), "--print_config"])
    assert exc.value.code == 0
    printed = capsys.readouterr().out
    assert "class_path: avpretrain.pretrain.AVMAEPretrain" in printed


def test_fit_on_inputs_off_the_models_grid_counts_flops(tiny_world, tmp_path, capsys):
    """48 px frames and 288 audio frames into a model built for 32 px and 192 frames."""
    cfg = tiny_recipe(tiny_world, tmp_path / "run", max_steps=3)
    cfg["data"]["init_args"]["frame_size"] = 48
    cfg["data"]["init_args"]["fbank"]["target_frames"] = 288
    cli = run_lightning_cli(["fit", "--config", str(write_recipe(cfg, tmp_path / "c.yaml"))])
    cli.trainer.logger.experiment.finish()
    assert cli.trainer.global_step == 3
    monitor = next(c for c in cli.trainer.callbacks if type(c).__name__ == "ThroughputMonitor")
    model = cli.model.model
    on_grid = count_train_flops_per_sample(
        model, {"audio": torch.zeros(1, 1, 128, 192), "video": torch.zeros(1, 3, 32, 32)}
    )
    assert monitor.flops_per_sample > on_grid  # more patches, more FLOPs
    assert "training FLOPs per sample" in capsys.readouterr().out
