"""Task recipes shrunk to the tiny world, a tiny exported encoder file, and running them."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image

from avpretrain.models import AVMAE
from avpretrain.models.encoder_file import save_encoders
from avpretrain.recipes import resolve_recipe

ROOT = Path(__file__).resolve().parents[2]
BACKBONE = {
    "encoder": "tiny",
    "decoder": "tiny_decoder",
    "audio_shape": [128, 192],
    "video_size": 32,
}


def tiny_encoders(path: Path, seed: int = 1, **overrides: Any) -> Path:
    """An encoder file of the tiny AV-MAE at the tiny world's shapes."""
    torch.manual_seed(seed)
    return save_encoders(AVMAE(**{**BACKBONE, **overrides}), path)


def task_recipe(recipe: str, world: Path, run_dir: Path, **model: Any) -> dict[str, Any]:
    """``tasks/<recipe>`` pointed at the tiny world (2 s clips, 32 px, 4 classes)."""
    cfg = yaml.safe_load(resolve_recipe(f"tasks/{recipe}").read_text())
    trainer = cfg["trainer"]
    trainer.update(
        default_root_dir=str(run_dir),
        max_epochs=2,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger={
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(run_dir)},
        },
    )
    init = cfg["model"]["init_args"]
    init["backbone"] = dict(BACKBONE)
    if "answers" in init:  # question answering: the world's vocabulary file
        init["answers"] = str(world / "answers.json")
    init.update(model)
    data = cfg["data"]["init_args"]
    data.update(
        train_urls=str(world / "train"),
        val_urls=str(world / "val"),
        batch_size=8,
        num_workers=0,
        frame_size=32,
    )
    data["fbank"]["target_frames"] = 192
    return cfg


def write(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def logged_rows(run_dir: Path) -> list[dict[str, str]]:
    """The rows of the CSVLogger's ``metrics.csv`` under ``run_dir``."""
    with next(run_dir.glob("**/metrics.csv")).open() as f:
        return list(csv.DictReader(f))


def fit_in_subprocess(config: Path, run_dir: Path) -> list[dict[str, str]]:
    """``avpretrain fit --config config`` in a fresh process (DDP spawns need one); its logged
    rows. Fails the test, with the end of stderr, if the command fails."""
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "avpretrain.cli", "fit", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return logged_rows(run_dir)


def raw_samples(shard_dir: Path) -> dict[str, dict[str, Any]]:
    """Raw members of every sample in a folder's shards (``__key__`` plus bytes by extension),
    by key, read with ``tarfile`` alone."""
    samples: dict[str, dict[str, Any]] = {}
    for path in sorted(shard_dir.glob("*.tar")):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                key, ext = member.name.split(".", 1)
                samples.setdefault(key, {"__key__": key})[ext] = tar.extractfile(member).read()
    return samples


def pil_nearest(mask: np.ndarray, size: int) -> np.ndarray:
    """Reference: PIL nearest resize of the short side to ``size``, centre crop (tv rounding)."""
    h, w = mask.shape
    nh, nw = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    out = np.asarray(Image.fromarray(mask).resize((nw, nh), Image.NEAREST))
    top, left = int(round((nh - size) / 2)), int(round((nw - size) / 2))
    return out[top : top + size, left : left + size]
