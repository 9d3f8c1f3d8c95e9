"""``avpretrain demo``: the whole framework in a few minutes on a laptop CPU.

1. writes a small synthetic audio-visual world (``<out>/world``; the hard world, where colour
   and pitch are nuisance and only shape, texture, timbre and envelope name a class), or reuses
   the one already there when its settings match;
2. pretrains the tiny AV-MAE of ``configs/pretrain/tiny_video.yaml`` (8 px video patches, the
   video encoder taught by the audio embedding) through the same LightningCLI path as
   ``avpretrain fit``, for whatever is left of the time budget after the world and the
   evaluation;
3. linear-probes clip classification on the pretrained encoders and on the same encoders at
   their random initialisation, and prints a table with the reconstruction loss before and after
   and the probe accuracies against chance; saves the reconstruction figure as PNG.

``--seed`` sets the model's initialisation, the masks and the data order (the world stays the
same), so runs with seeds 0, 1, 2 measure the spread of the pretrained-vs-random margin.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import yaml

from avpretrain.arguments import choices
from avpretrain.data.loading.datamodule import AVDataModule
from avpretrain.data.synthetic.classes import Difficulty
from avpretrain.data.synthetic.world import SynthConfig, write_world
from avpretrain.models import AVMAE
from avpretrain.recipes import resolve_recipe


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="avpretrain demo", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="demo_out", help="folder for the world, run and figure")
    p.add_argument("--clips", type=int, default=1024, help="training clips of the world")
    p.add_argument("--classes", type=int, default=8)
    p.add_argument(
        "--difficulty",
        choices=choices(Difficulty),
        default="hard",
        help="hard: colour and pitch are per-object nuisance; easy: each class has its own",
    )
    p.add_argument("--seed", type=int, default=0, help="model, mask and data-order seed")
    p.add_argument(
        "--minutes",
        type=float,
        default=5.0,
        help="time budget of the whole demo; pretraining gets what the world and the "
        "evaluation leave",
    )
    p.add_argument("--max-steps", type=int, default=100_000, help="pretraining step budget")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=1, help="data loader workers")
    p.add_argument(
        "--recipe",
        default="pretrain/tiny_video",
        help="pretraining recipe to start from: a packaged name (pretrain/tiny_video) or a file",
    )
    return p.parse_args(argv)


# Seconds kept back from the budget for the evaluation after pretraining (embeddings of the
# train and val clips twice, two probes, the figure), measured on 2 CPU cores at the defaults.
EVAL_RESERVE_SECONDS = 25.0


def _recipe(args: argparse.Namespace, world: Path, run_dir: Path) -> dict[str, Any]:
    """The recipe pointed at the demo's world and folders, with its step budget and seed.

    The time limit is set just before fitting (:func:`_set_max_time`).
    """
    cfg = yaml.safe_load(resolve_recipe(args.recipe).read_text())
    cfg["seed_everything"] = args.seed
    trainer = cfg["trainer"]
    trainer.update(
        default_root_dir=str(run_dir),
        max_steps=args.max_steps,
        val_check_interval=None,
        check_val_every_n_epoch=None,
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer["logger"]["init_args"]["save_dir"] = str(run_dir)
    for callback in trainer["callbacks"]:
        if callback["class_path"].endswith("ModelCheckpoint"):
            callback["init_args"]["dirpath"] = str(run_dir / "checkpoints")
    data = cfg["data"]["init_args"]
    data.update(
        train_urls=str(world / "train"),
        val_urls=None,
        batch_size=args.batch_size,
        num_workers=args.workers,
        epoch_samples=4 * args.clips,  # long epochs: fewer worker restarts
    )
    return cfg


def _eval_data(world: Path, split: str, recipe: dict[str, Any], classes: int) -> AVDataModule:
    data = recipe["data"]["init_args"]
    fbank = data["fbank"]
    from avpretrain.data.loading.audio import FbankConfig

    return AVDataModule(
        val_urls=str(world / split),
        batch_size=64,
        num_workers=0,
        frame_size=data["frame_size"],
        fbank=FbankConfig(**fbank),
        num_classes=classes,
    )


@torch.no_grad()
def _mean_loss(model: AVMAE, batches: list[dict[str, Any]]) -> float:
    """Masked reconstruction loss (audio + video, no contrastive term) with fixed masks.

    The masks are the same for every call, so the losses before and after pretraining compare.
    """
    model.eval()
    losses = []
    for i, batch in enumerate(batches):
        generator = torch.Generator().manual_seed(i)
        out = model(batch["audio"], batch["video"], generator=generator)
        losses.append((out.loss_audio + out.loss_video).item())
    return sum(losses) / len(losses)


def _probe(
    model: AVMAE,
    train_batches: list[dict[str, Any]],
    val_batches: list[dict[str, Any]],
    classes: int,
) -> float:
    from avpretrain.probe import extract_embeddings, linear_probe

    xtr, ytr = extract_embeddings(model, train_batches)
    xte, yte = extract_embeddings(model, val_batches)
    return linear_probe(xtr, ytr, xte, yte, num_classes=classes)


def _batches(dm: AVDataModule) -> list[dict[str, Any]]:
    dm.setup("validate")
    return list(dm.val_dataloader())


def _set_max_time(trainer: Any, seconds: float) -> None:
    """Replace the trainer's time limit (Lightning's ``Timer`` callback) by ``seconds``."""
    from lightning.pytorch.callbacks import Timer

    kept = [cb for cb in trainer.callbacks if not isinstance(cb, Timer)]
    trainer.callbacks = [*kept, Timer(duration=timedelta(seconds=max(seconds, 1.0)))]


def _finish_wandb() -> None:
    """Close the offline W&B run, so that a next demo in the same process starts its own."""
    import wandb

    if wandb.run is not None:
        wandb.finish()


def _world(world: Path, synth: SynthConfig) -> str:
    """Write the demo's world, or reuse the one in ``world`` when it was made with ``synth``."""
    start = time.perf_counter()
    index = world / "val" / "index.json"
    if index.exists() and (world / "train" / "index.json").exists():
        if json.loads(index.read_text()).get("synth") == asdict(synth):
            return f"reusing the synthetic world in {world}"
    summary = write_world(world, synth, workers=2)
    return (
        f"synthetic world ({synth.difficulty}): {summary['train']['clips']} train / "
        f"{summary['val']['clips']} val clips in {world} ({time.perf_counter() - start:.1f} s)"
    )


@contextmanager
def _lightning_quiet() -> Iterator[None]:
    """Keep Lightning's loggers at WARNING while the demo runs, restored afterwards.

    Lightning's device, seed and summary lines are noise beside the demo's own summary.
    """
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0."""
    with _lightning_quiet():
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    from avpretrain.lightning_cli import run_lightning_cli
    from avpretrain.training.figures import reconstruction_figure

    start = time.perf_counter()
    args = _parse(argv or [])
    out = Path(args.out)
    world, run_dir = out / "world", out / "run"
    synth = SynthConfig(
        clips=args.clips,
        num_classes=args.classes,
        clip_seconds=3.0,
        num_frames=4,
        frame_size=64,
        shard_size=64,
        seed=0,
        difficulty=args.difficulty,
    )
    print(f"[demo] {_world(world, synth)}")

    recipe = _recipe(args, world, run_dir)
    config_path = out / "pretrain.yaml"
    config_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    cli = run_lightning_cli(["--config", str(config_path)], run=False)
    initial = copy.deepcopy(cli.model.model)

    train_batches = _batches(_eval_data(world, "train", recipe, args.classes))
    val_batches = _batches(_eval_data(world, "val", recipe, args.classes))
    loss_before = _mean_loss(initial, val_batches)
    left = args.minutes * 60 - (time.perf_counter() - start) - EVAL_RESERVE_SECONDS
    _set_max_time(cli.trainer, left)
    print(
        f"[demo] pretraining {args.recipe} (seed {args.seed}) for {left / 60:.1f} min, "
        f"the budget's rest (config: {config_path})"
    )
    t0 = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    pretrained = cli.model.model
    steps, minutes = cli.trainer.global_step, (time.perf_counter() - t0) / 60
    loss_after = _mean_loss(pretrained, val_batches)

    acc_pre = _probe(pretrained, train_batches, val_batches, args.classes)
    acc_rand = _probe(initial, train_batches, val_batches, args.classes)
    fig = reconstruction_figure(
        pretrained, val_batches[0]["audio"][:1], val_batches[0]["video"][:1]
    )
    figure_path = out / "reconstruction.png"
    fig.savefig(figure_path, dpi=80)
    from avpretrain.models.encoder_file import save_encoders

    encoders_path = save_encoders(pretrained, out / "encoders.pt")
    _finish_wandb()
    result = {
        "seed": args.seed,
        "difficulty": args.difficulty,
        "steps": steps,
        "pretrain_minutes": round(minutes, 3),
        "loss_random": loss_before,
        "loss_pretrained": loss_after,
        "probe_random": acc_rand,
        "probe_pretrained": acc_pre,
        "chance": 1 / args.classes,
    }
    (out / "result.json").write_text(json.dumps(result, indent=1))

    rows = [
        ("reconstruction loss (val, fixed masks)", f"{loss_before:.4f}", f"{loss_after:.4f}"),
        ("linear probe top-1 (val)", f"{acc_rand:.3f}", f"{acc_pre:.3f}"),
        ("chance level", f"{1 / args.classes:.3f}", f"{1 / args.classes:.3f}"),
    ]
    total = (time.perf_counter() - start) / 60
    print(f"\n[demo] {steps} pretraining steps in {minutes:.1f} min; {total:.1f} min in all\n")
    print(f"| {'':40s} | {'random init':>11s} | {'pretrained':>10s} |")
    print(f"|{'-' * 42}|{'-' * 13}|{'-' * 12}|")
    for name, before, after in rows:
        print(f"| {name:40s} | {before:>11s} | {after:>10s} |")
    print(
        f"\n[demo] pretrained - random: {100 * (acc_pre - acc_rand):+.1f} points of probe accuracy"
    )
    print(f"[demo] figures in {out / 'result.json'}; reconstruction figure: {figure_path}")
    print(f"[demo] pretrained encoders for the tasks: {encoders_path}")
    print(f"[demo] checkpoints: {run_dir / 'checkpoints'}; W&B offline run in {run_dir / 'wandb'}")
    return 0
