"""A tiny pretraining recipe for the tests: configs/pretrain/tiny.yaml pointed at the tiny world."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from avpretrain.recipes import resolve_recipe

ROOT = Path(__file__).resolve().parents[2]


def tiny_recipe(world: Path, run_dir: Path, max_steps: int = 30, **data: Any) -> dict[str, Any]:
    """The tiny recipe shrunk to the tiny world (2 s clips, 32 px frames) and to a few steps."""
    cfg = yaml.safe_load(resolve_recipe("pretrain/tiny").read_text())
    trainer = cfg["trainer"]
    trainer.update(
        default_root_dir=str(run_dir),
        max_steps=max_steps,
        val_check_interval=None,
        check_val_every_n_epoch=None,
        limit_val_batches=0,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer["logger"]["init_args"]["save_dir"] = str(run_dir)
    for callback in trainer["callbacks"]:
        args = callback.setdefault("init_args", {})
        if callback["class_path"].endswith("ModelCheckpoint"):
            args.update(dirpath=str(run_dir / "checkpoints"), every_n_train_steps=10)
        if callback["class_path"].endswith("ReconstructionFigure"):
            args.update(every_n_steps=10)
        if callback["class_path"].endswith("ThroughputMonitor"):
            args.update(window=5, peak_tflops=1.0)
    model = cfg["model"]["init_args"]["model"]["init_args"]
    # raw-pixel targets: their loss falls within a few steps (norm-pix targets start near their
    # floor of 1.0 per modality and fall slowly), so a short run shows learning
    model.update(audio_shape=[128, 192], video_size=32, norm_pix_loss=False)
    cfg["model"]["init_args"].update(lr=2e-3, warmup_steps=3)
    data_args = cfg["data"]["init_args"]
    data_args.update(
        train_urls=str(world / "train"),
        val_urls=None,
        batch_size=8,
        num_workers=0,
        shuffle_buffer=16,
        epoch_samples=64,
        frame_size=32,
        **data,
    )
    data_args["fbank"]["target_frames"] = 192
    return cfg


def write_recipe(cfg: dict[str, Any], path: Path) -> Path:
    """Write a recipe dict as YAML and return its path."""
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
