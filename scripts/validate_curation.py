"""Validate the curation filter on the synthetic world's known corruptions.

Steps (each skipped when its output exists in ``--workdir``, so a rerun resumes):

1. write a synthetic world with corrupted clips (or take ``--world``);
2. copy its uncorrupted training clips to ``clean/`` (the models never see a corruption);
3. pretrain the tiny AV-MAE on them (``configs/pretrain/tiny.yaml``, ``--pretrain-steps``) and
   export its encoders;
4. fit the retrieval task on them (``tasks/retrieval/synth.yaml``; by default finetuning the
   encoders, ``--retrieval-mode``) and write its text tower;
5. score every clip of the world's ``--split`` with ``avpretrain curate`` (own model, text tower;
   instance and temporal scores in ``--av-space``);
6. per stage, precision and recall at catching its corruption kind (at ``--thresholds`` and the
   best recall at 0.9 precision), printed and written to ``validation.md`` as Markdown. The
   instance stage is judged twice: against every clean clip, and against the clean clips with
   an on-screen sound source. A clean clip whose sounds all come from off-screen has audio with
   no source in its frames, which is what instance alignment is meant to flag.

    python scripts/validate_curation.py --workdir runs/validate_curation

The defaults are a quick check; the README's figures come from
``--clips 8192 --pretrain-steps 4000 --retrieval-epochs 10`` (26 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from avpretrain.curation import cli as curate_cli
from avpretrain.curation.embedders import AV_SPACES
from avpretrain.curation.filter import parse_thresholds
from avpretrain.curation.text_tower import save_text_tower, tower_from_checkpoint
from avpretrain.curation.validation import CLEAN, STAGE_TARGETS, check_stages, to_markdown
from avpretrain.data.shards import read_index, read_raw_samples, write_index, write_shard
from avpretrain.data.synthetic.config import SynthConfig
from avpretrain.data.synthetic.world import write_world
from avpretrain.models.encoder_file import model_from_checkpoint, save_encoders
from avpretrain.recipes import resolve_recipe
from avpretrain.tasks.backbone import MODES

ON_SCREEN = "instance (clean clips with an on-screen source)"


def clean_copy(source: Path, out: Path) -> int:
    """Copy the uncorrupted clips of shard folder ``source`` to ``out``; return how many."""
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for shard in read_index(source)["shards"]:
        samples = (
            s
            for s in read_raw_samples(shard["url"])
            if not json.loads(s["json"])["synthetic"].get("corruption")
        )
        counts[shard["name"]] = write_shard(out / shard["name"], samples)
    write_index(out, counts)
    return sum(counts.values())


def sourceless_keys(split: Path) -> set[str]:
    """Keys of the clips of ``split`` whose sounding objects are all off-screen."""
    return {
        s["__key__"]
        for shard in read_index(split)["shards"]
        for s in read_raw_samples(shard["url"])
        if not any(
            o["sounding"] and o["on_screen"] for o in json.loads(s["json"])["synthetic"]["objects"]
        )
    }


def fit(config: dict[str, Any], path: Path) -> None:
    """Write ``config`` to ``path`` and run ``avpretrain fit`` on it in a fresh process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "avpretrain.cli", "fit", "--config", str(path)]
    subprocess.run(cmd, check=True, cwd=path.parent)
    if not (path.parent / "checkpoints/last.ckpt").exists():
        raise RuntimeError(f"{path}: the fit wrote no checkpoints/last.ckpt (see its log above)")


def _local_trainer(config: dict[str, Any], run: Path, **trainer: Any) -> None:
    """No logger, no validation, one checkpoint (``last.ckpt``) in ``run/checkpoints``."""
    # save_last writes last.ckpt when training ends, whatever the schedule
    save = {"dirpath": str(run / "checkpoints"), "save_last": True, "save_top_k": 0}
    checkpoint = {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": save}
    config["trainer"].update(
        logger=False,
        callbacks=[checkpoint],
        default_root_dir=str(run),
        limit_val_batches=0,
        enable_progress_bar=False,
        **trainer,
    )
    config["trainer"].pop("val_check_interval", None)


def _data(config: dict[str, Any], clean: Path, cfg: SynthConfig, workers: int) -> int:
    """Point the recipe's data at ``clean``; return the fbank frames (whole 16-frame patches)."""
    # fbank frames of a clip: 25 ms windows every 10 ms at 16 kHz
    frames = 1 + (round(cfg.clip_seconds * 16000) - 400) // 160
    frames -= frames % 16
    data = config["data"]["init_args"]
    data.update(train_urls=str(clean), val_urls=str(clean), frame_size=cfg.frame_size)
    # a small world's clean part may hold fewer clips than a batch (the last one is dropped)
    data.update(num_workers=workers, batch_size=min(data["batch_size"], read_index(clean)["total"]))
    data["fbank"].update(target_frames=frames)
    return frames


def pretrain(clean: Path, run: Path, cfg: SynthConfig, steps: int, workers: int) -> Path:
    """Pretrain the tiny recipe on ``clean`` and export its encoders to ``run/encoders.pt``."""
    out = run / "encoders.pt"
    if out.exists():
        return out
    config = yaml.safe_load(resolve_recipe("pretrain/tiny").read_text())
    _local_trainer(config, run, max_steps=steps)
    frames = _data(config, clean, cfg, workers)
    model = config["model"]["init_args"]["model"]["init_args"]
    model.update(audio_shape=[128, frames], video_size=cfg.frame_size)
    fit(config, run / "pretrain.yaml")
    return save_encoders(model_from_checkpoint(run / "checkpoints/last.ckpt"), out)


def fit_text_tower(
    clean: Path, run: Path, encoders: Path, cfg: SynthConfig, mode: str, epochs: int, workers: int
) -> Path:
    """Fit the retrieval task in ``mode`` on ``clean``; write its tower to ``run``."""
    out = run / "text_tower.pt"
    if out.exists():
        return out
    config = yaml.safe_load(resolve_recipe("tasks/retrieval/synth").read_text())
    _local_trainer(config, run, max_epochs=epochs)
    _data(config, clean, cfg, workers)
    config["model"]["init_args"].update(encoders=str(encoders.resolve()), mode=mode)
    fit(config, run / "retrieval.yaml")
    tower = tower_from_checkpoint(run / "checkpoints/last.ckpt", run / "retrieval.yaml")
    return save_text_tower(tower, out)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="folder for the world, models and scores")
    p.add_argument("--world", help="an existing corrupted world (with train/ and val/)")
    p.add_argument("--clips", type=int, default=512, help="training clips of a new world")
    p.add_argument("--val-clips", type=int, default=256, help="validation clips of a new world")
    p.add_argument("--corrupt", type=float, default=0.1, help="fraction per corruption kind")
    p.add_argument("--seconds", type=float, default=3.0, help="clip length of a new world")
    p.add_argument("--frames", type=int, default=4, help="frames per clip of a new world")
    p.add_argument("--frame-size", type=int, default=64, help="frame side of a new world")
    p.add_argument("--pretrain-steps", type=int, default=250, help="tiny-recipe pretraining steps")
    p.add_argument("--retrieval-epochs", type=int, default=15, help="text tower epochs")
    p.add_argument(
        "--retrieval-mode",
        choices=MODES,
        default="finetune",
        help="how the retrieval task trains the encoders for the text tower",
    )
    p.add_argument(
        "--av-space",
        choices=AV_SPACES,
        default="retrieval",
        help="space of the instance and temporal scores (as `curate --av-space`)",
    )
    p.add_argument("--workers", type=int, default=2, help="data loader workers")
    p.add_argument("--split", default="val", help="the world's split to score")
    p.add_argument(
        "--thresholds",
        default="audio_visual=0.5,temporal=0.5,text_av=0.5",
        help="operating point per criterion (absolute scores, as `curate --thresholds`)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    world = Path(args.world).resolve() if args.world else work / "world"
    if not args.world and not (world / "val/index.json").exists():
        cfg = SynthConfig(
            clips=args.clips,
            val_clips=args.val_clips,
            clip_seconds=args.seconds,
            num_frames=args.frames,
            frame_size=args.frame_size,
            corrupt_fraction=args.corrupt,
        )
        write_world(world, cfg)
    cfg = SynthConfig(**read_index(world / "train")["synth"])
    clean = work / "clean"
    if not (clean / "index.json").exists():
        print(f"validate: {clean_copy(world / 'train', clean)} clean training clips")
    encoders = pretrain(clean, work / "pretrain", cfg, args.pretrain_steps, args.workers)
    tower = fit_text_tower(
        clean,
        work / "retrieval",
        encoders,
        cfg,
        args.retrieval_mode,
        args.retrieval_epochs,
        args.workers,
    )
    out = work / "curated"
    curate_args = [str(world / args.split), "--out", str(out), "--encoders", str(encoders)]
    curate_args += ["--text-encoder", str(tower), "--av-space", args.av_space]
    curate_args += ["--thresholds", args.thresholds]
    if curate_cli.main(curate_args) != 0:
        return 1
    records = [
        r
        for f in sorted((out / "scores").glob("*.json"))
        for r in json.loads(f.read_text())["clips"]
    ]
    thresholds = parse_thresholds(args.thresholds)
    checks = check_stages(records, thresholds)
    unseen = sourceless_keys(world / args.split)
    seen = [r for r in records if not (r["corruption"] == CLEAN and r["key"] in unseen)]
    checks += check_stages(seen, thresholds, [(ON_SCREEN, *STAGE_TARGETS[0][1:])])
    left_out = len(records) - len(seen)
    table = to_markdown(checks)
    table += (
        f"\n`{ON_SCREEN}` leaves out the {left_out} clean clips whose sounds all come from "
        "off-screen: their audio has no source in the frames.\n"
    )
    minutes = (time.perf_counter() - start) / 60
    (work / "validation.md").write_text(table)
    print(table)
    print(f"validate: {len(records)} clips of {world / args.split} scored; {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
