"""``fit`` ends on its own when it cannot go on: data that yields nothing, NaN, SIGTERM, SIGINT.

Every run goes through the real CLI on the tiny world (or on garbage shards) with the tiny recipe.
Bounds on how long a run may take are only there so a regression fails instead of hanging.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from avpretrain.data.loading.datamodule import AVDataModule
from avpretrain.data.shards import write_index, write_shard
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.models import AVMAE
from avpretrain.models.encoder_file import save_encoders
from avpretrain.training.finite import NonFiniteError

from .recipe import ROOT, tiny_recipe, write_recipe

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _finish_wandb():
    """A run stopped by an exception leaves its offline W&B run open; close it for the next."""
    yield
    import wandb

    wandb.finish()


def _env() -> dict[str, str]:
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _garbage_world(root: Path, shards: int = 3) -> Path:
    """``root/train`` holding ``shards`` .tar files of random bytes (no index)."""
    train = root / "train"
    train.mkdir(parents=True)
    rng = torch.Generator().manual_seed(0)
    for i in range(shards):
        data = torch.randint(0, 256, (4096,), generator=rng, dtype=torch.uint8).numpy().tobytes()
        (train / f"shard-{i:06d}.tar").write_bytes(data)
    return root


def _fit(cfg: dict, path: Path, extra: list[str] | None = None):
    return run_lightning_cli(["fit", "--config", str(write_recipe(cfg, path)), *(extra or [])])


@pytest.mark.parametrize("resampled", [True, False], ids=["resampled", "one_pass"])
def test_fit_on_garbage_shards_stops_with_a_clear_error(tmp_path, resampled, caplog):
    world = _garbage_world(tmp_path / "world")
    cfg = tiny_recipe(world, tmp_path / "run", max_steps=5, resampled=resampled)
    cfg["data"]["init_args"]["num_workers"] = 0
    with pytest.raises(RuntimeError) as err:
        _fit(cfg, tmp_path / "c.yaml")
    if resampled:  # an endless stream of broken shards: the empty-shard run ends it
        assert "no sample from the last 100 shards read" in str(err.value)
        assert "ReadError" in str(err.value) or "unreadable" in str(err.value)
    else:  # one pass over three broken shards: an epoch without a batch ends it
        assert "train epoch 0: no batch at all (3 samples or shard parts skipped" in str(err.value)
    skips = [r for r in caplog.records if r.getMessage().startswith("skipped")]
    assert 0 < len(skips) <= 25  # the first errors one by one, then summary lines only


def test_fit_on_index_of_one_empty_shard_is_refused(tmp_path):
    train = tmp_path / "world" / "train"
    train.mkdir(parents=True)
    write_shard(train / "shard-000000.tar", [])
    write_index(train, {"shard-000000.tar": 0})
    cfg = tiny_recipe(tmp_path / "world", tmp_path / "run", max_steps=5)
    with pytest.raises(ValueError, match=r"lists 1 shard\(s\) and no sample: nothing to read"):
        _fit(cfg, tmp_path / "c.yaml")


def test_nan_loss_stops_naming_step_and_term_and_keeps_last_good_checkpoint(tiny_world, tmp_path):
    run = tmp_path / "run"
    cfg = tiny_recipe(tiny_world, run, max_steps=30)
    cfg["trainer"]["callbacks"].append(
        {"class_path": "kill_callback.PoisonAudioAtStep", "init_args": {"step": 12}}
    )
    sys.path.insert(0, str(HERE))
    try:
        with pytest.raises(NonFiniteError) as err:
            _fit(cfg, tmp_path / "c.yaml")
    finally:
        sys.path.remove(str(HERE))
    message = str(err.value)
    assert "training step 12" in message and "non-finite gradient" in message
    bad, _, good = message.partition("(finite: ")
    assert "train/loss_audio=nan" in bad and "train/loss=nan" in bad
    assert "train/loss_video=" in good  # the video term was fine
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 10
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_absurd_learning_rate_stops_at_the_first_nan(tiny_world, tmp_path):
    cfg = tiny_recipe(tiny_world, tmp_path / "run", max_steps=30)
    cfg["model"]["init_args"]["lr"] = 1e6
    with pytest.raises(NonFiniteError, match=r"training step \d+ .*non-finite"):
        _fit(cfg, tmp_path / "c.yaml")
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()  # never reached step 10


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"gain_db": -3.0}, r"gain_db -3.0 outside"),
        ({"spec_freq_mask": 500}, r"spec_freq_mask 500 outside \[0, 128\)"),
        ({"spec_time_mask": -1}, r"spec_time_mask -1 outside"),
        ({"mixup_alpha": float("inf"), "num_classes": 4}, r"mixup_alpha inf is not a finite"),
        ({"frame_size": 0}, r"need frame_size >= 1"),
        ({"epoch_samples": 0}, r"epoch_samples >= 1"),
        ({"max_empty_shards": -1}, r"max_empty_shards and batch_timeout_s must be >= 0"),
    ],
)
def test_other_garbage_data_arguments_are_refused(args, problem):
    with pytest.raises(ValueError, match=problem):
        AVDataModule(train_urls="unused", **args)


def test_absurd_gain_is_refused_before_training(tiny_world, tmp_path):
    cfg = tiny_recipe(tiny_world, tmp_path / "run", max_steps=3, gain_db=1000.0)
    with pytest.raises(ValueError, match=r"gain_db 1000.0 outside \[0, 40\]"):
        _fit(cfg, tmp_path / "c.yaml")


def _fit_with(cfg: dict, path: Path, callback: dict):
    """Fit with one more callback from ``kill_callback``; returns the SystemExit it ends with."""
    cfg["trainer"]["callbacks"].append(callback)
    sys.path.insert(0, str(HERE))
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pytest.raises(SystemExit) as stop:
            _fit(cfg, path)
    finally:
        sys.path.remove(str(HERE))
        assert {s: signal.getsignal(s) for s in previous} == previous  # handlers restored
    return stop.value


def test_sigterm_inside_a_step_stops_after_it_with_a_checkpoint(tiny_world, tmp_path):
    run = tmp_path / "run"
    cfg = tiny_recipe(tiny_world, run, max_steps=30)
    at_step = {"class_path": "kill_callback.SignalAtStep", "init_args": {"step": 3}}
    assert _fit_with(cfg, tmp_path / "c.yaml", at_step).code == 128 + signal.SIGTERM
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 4  # step 3 was finished, nothing after it


def test_sigterm_while_waiting_for_data_stops_at_once(tmp_path):
    world = _garbage_world(tmp_path / "world")
    cfg = tiny_recipe(world, tmp_path / "run", max_steps=5, max_empty_shards=0)  # never ends
    cfg["data"]["init_args"]["num_workers"] = 0
    timer = {"class_path": "kill_callback.SignalAfterStart", "init_args": {"delay_s": 0.5}}
    assert _fit_with(cfg, tmp_path / "c.yaml", timer).code == 128 + signal.SIGTERM
    ckpt = torch.load(
        tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    assert ckpt["global_step"] == 0


def _start(cfg: dict, path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "avpretrain.cli", "fit", "--config", str(write_recipe(cfg, path))],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc: subprocess.Popen, ready, limit_s: float = 300.0) -> None:
    deadline = time.monotonic() + limit_s
    while not ready():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.2)


@pytest.mark.slow
def test_sigterm_while_training_ends_fit_with_a_checkpoint(tiny_world, tmp_path):
    run = tmp_path / "run"
    proc = _start(tiny_recipe(tiny_world, run, max_steps=100000), tmp_path / "c.yaml")
    last = run / "checkpoints" / "last.ckpt"
    _wait_for(proc, last.exists)  # step 10 reached
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    step = int(re.search(r"stopped by SIGTERM at step (\d+); checkpoint", err).group(1))
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == step >= 10  # written at the signal, not the step-10 one


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_ends_fit_blocked_on_unreadable_data(tmp_path, signum):
    world = _garbage_world(tmp_path / "world")
    cfg = tiny_recipe(world, tmp_path / "run", max_steps=5, max_empty_shards=0)  # never ends
    cfg["data"]["init_args"]["num_workers"] = 1
    proc = _start(cfg, tmp_path / "c.yaml")
    _wait_for(proc, lambda: "skipped" in proc.stderr.readline())  # reading has begun
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == (143 if signum == signal.SIGTERM else 1), err[-3000:]
    assert f"received {signal.Signals(signum).name}: stopping now" in err


def test_fit_with_ckpt_path_of_an_encoder_file_is_refused(tiny_world, tmp_path):
    encoders = save_encoders(
        AVMAE("tiny", "tiny_decoder", audio_shape=(128, 192), video_size=32), tmp_path / "enc.pt"
    )
    cfg = tiny_recipe(tiny_world, tmp_path / "run", max_steps=3)
    with pytest.raises(ValueError, match=r"encoder file from `avpretrain export`"):
        _fit(cfg, tmp_path / "c.yaml", ["--ckpt_path", str(encoders)])
