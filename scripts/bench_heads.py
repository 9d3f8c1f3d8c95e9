"""Each downstream head on the synthetic world, from pretrained and from random encoders.

Trains every task's synthetic recipe for a bounded time through the same LightningCLI path as
``avpretrain fit``, validates, and prints one table: task, metric, pretrained, random, chance.

    avpretrain demo --out demo_out              # writes demo_out/world and demo_out/encoders.pt
    python scripts/bench_heads.py --world demo_out/world --encoders demo_out/encoders.pt

Seed N seeds the head, the data order and the random encoders' initialisation (every figure
in the README before this was measured with the random encoders drawn with seed 0 in every run).

``--set model.init_args.mask_threshold=null`` changes a recipe key (dotted path from the
recipe's top, YAML value) in every task it runs, for one-task variants of a recipe.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path

import numpy as np
import yaml
from chance_levels import localization_chance, majority_chance, parsing_chance

from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.models.encoder_file import load_encoders
from avpretrain.recipes import resolve_recipe

# overall, per modality, per question type (MUSIC-AVQA's printed names)
QA_ACCURACIES = (
    "acc",
    "acc_audio",
    "acc_visual",
    "acc_av",
    "acc_audio_counting",
    "acc_audio_cmp",
    "acc_visual_counting",
    "acc_visual_loc",
    "acc_av_ext",
    "acc_av_counting",
    "acc_av_loc",
    "acc_av_cmp",
    "acc_av_temporal",
)


# task: (recipe, {metric logged: chance level, a function of the validation size, the classes and
# the recipe, or the name of a baseline metric the task logs})
TASKS = {
    "classification": ("classification/synth_linear.yaml", {"val/acc": lambda n, c, cfg: 1 / c}),
    "retrieval": (
        "retrieval/synth.yaml",
        {
            "val/a2v_R1": lambda n, c, cfg: 100 / n,
            "val/a2v_R10": lambda n, c, cfg: 1000 / n,
            # the encoders' own embeddings, no head (CAV-MAE's zero-shot retrieval)
            "val/zs_a2v_R1": lambda n, c, cfg: 100 / n,
            "val/zs_a2v_R10": lambda n, c, cfg: 1000 / n,
        },
    ),
    "localization": (
        "localization/synth.yaml",
        {
            "val/mean_cIoU": localization_chance("mean_cIoU"),
            "val/AUC": localization_chance("AUC"),
            "val/slavc_AP": None,
            # the encoders' own cosine maps, no head
            "val/zs_mean_cIoU": localization_chance("mean_cIoU"),
        },
    ),
    "segmentation": ("segmentation/synth.yaml", {"val/mIoU": None}),
    "parsing": (
        "parsing/synth.yaml",
        {
            metric: parsing_chance(metric)
            for metric in ("val/segment_type_at_av", "val/event_type_at_av")
        },
    ),
    # separation's chance level is the unseparated mixture, which the task logs itself
    "separation": ("separation/synth.yaml", {"val/SDR": "val/SDR_mix"}),
    "music_avqa": (
        "music_avqa/synth.yaml",
        {f"val/{key}": majority_chance(f"val/{key}") for key in QA_ACCURACIES},
    ),
    # dialog's baseline is the most frequent training answer per question type, logged by the task
    "dialog": (
        "dialog/synth.yaml",
        {"val/Bleu_4": "val/baseline_Bleu_4", "val/CIDEr": "val/baseline_CIDEr"},
    ),
}


def load_recipe(recipe: str, world: Path) -> dict:
    """A task recipe reading ``world``'s train and val shards (and answer vocabulary), one worker."""
    cfg = yaml.safe_load(resolve_recipe(f"tasks/{recipe}").read_text())
    data = cfg["data"]["init_args"]
    data.update(train_urls=str(world / "train"), val_urls=str(world / "val"), num_workers=1)
    if "answers" in cfg["model"]["init_args"]:  # question answering: the world's vocabulary
        answers = world / "answers.json"
        if not answers.is_file():
            raise SystemExit(
                f"{recipe} needs the world's answer vocabulary {answers}, which `avpretrain "
                "synth` writes (a world from an older version lacks it)"
            )
        cfg["model"]["init_args"]["answers"] = str(answers)
    return cfg


def set_key(cfg: dict, item: str) -> None:
    """Apply ``dotted.key=yaml`` to ``cfg`` (every key of the path but the last must exist)."""
    key, sep, value = item.partition("=")
    if not sep:
        raise SystemExit(f"--set wants dotted.key=value, got {item!r}")
    *path, last = key.split(".")
    node = cfg
    for part in path:
        if not isinstance(node.get(part), dict):
            raise SystemExit(f"--set {item!r}: the recipe has no mapping at {part!r}")
        node = node[part]
    node[last] = yaml.safe_load(value)


def random_backbone(encoders: str) -> dict:
    """The AV-MAE arguments of an encoder file, for random encoders of the same architecture
    (whatever the recipe's ``backbone`` says: e.g. a video patch size the recipe predates)."""
    return json.loads(json.dumps(load_encoders(encoders).config))  # tuples -> YAML-safe lists


def run_task(
    cfg: dict, encoders: str | None, minutes: float, max_steps: int, seed: int, tmp: Path
) -> dict:
    """Fit a recipe for ``minutes`` or ``max_steps`` (whichever ends first) from ``seed``, and
    return its final validation metrics."""
    cfg["seed_everything"] = seed
    cfg["trainer"].update(
        max_time=f"00:00:{int(minutes):02d}:{round(minutes % 1 * 60):02d}",
        max_epochs=1000,
        max_steps=max_steps,
        # the bench scores one validation after training: none during it, so the time cap is
        # training time (dialog's generation and separation's BSS scoring cost minutes per pass)
        check_val_every_n_epoch=1001,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp),
        enable_progress_bar=False,
        enable_model_summary=False,
        logger={
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(tmp)},
        },
    )
    cfg["model"]["init_args"]["encoders"] = encoders
    # random encoders drawn anew per seed, so the random cells' spread includes the init's
    cfg["model"]["init_args"]["seed"] = seed
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cli = run_lightning_cli(["fit", "--config", str(path)])
    return cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)[0]


def mean_std(values: list[float]) -> str:
    """``"mean ± std"`` (sample standard deviation; 0 for a single value)."""
    t = np.asarray(values, dtype=np.float64)
    std = t.std(ddof=1) if len(t) > 1 else 0.0
    return f"{t.mean():.3f} ± {std:.3f}"


def verdict(pre: list[float], rand: list[float], level: float | None) -> str:
    """Whether the pretrained mean beats the random mean by more than the larger standard
    deviation and beats the chance / baseline level (``"yes"`` / ``"no"``); ``"n/a"`` with a
    single seed, whose spread is unknown (a one-run gap of any size is no evidence)."""
    p, r = np.asarray(pre), np.asarray(rand)
    if min(len(p), len(r)) < 2:
        return "n/a"
    spread = max(p.std(ddof=1), r.std(ddof=1))
    above = level is None or p.mean() > level
    return "yes" if p.mean() - r.mean() > spread and above else "no"


def table_row(row: tuple[str, str, list[float], list[float], float | None]) -> str:
    """One Markdown row: task, metric, pretrained and random mean ± std, level, verdict."""
    task, metric, pre, rand, level = row
    shown = "-" if level is None else f"{level:.3f}"
    return (
        f"| {task} | {metric} | {mean_std(pre)} | {mean_std(rand)} | {shown} | "
        f"{verdict(pre, rand, level)} |"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", required=True, type=Path, help="synthetic world (train/, val/)")
    p.add_argument("--encoders", required=True, help="pretrained encoders (avpretrain export)")
    p.add_argument("--minutes", type=float, default=1.0, help="training time cap per run")
    p.add_argument("--max-steps", type=int, default=-1, help="training step cap per run")
    p.add_argument("--seeds", type=int, default=3, help="runs per cell (seeds 0 .. N-1)")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument(
        "--runs-dir", type=Path, help="keep each run's logs in DIR/<task>/<encoders>-seed<N>"
    )
    p.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE", help="recipe overrides (see above)"
    )
    args = p.parse_args(argv)
    index = yaml.safe_load((args.world / "val" / "index.json").read_text())
    num_val, num_classes = index["total"], index["synth"]["num_classes"]
    backbone = random_backbone(args.encoders)
    # every recipe first, so a missing file or a bad --set stops the bench before any training
    recipes = {task: load_recipe(TASKS[task][0], args.world) for task in args.tasks}
    for cfg in recipes.values():
        cfg["model"]["init_args"]["backbone"] = backbone
        for item in args.set:
            set_key(cfg, item)
    rows = []
    for task, cfg in recipes.items():
        metrics = TASKS[task][1]
        scores: dict[str, list[dict]] = {"pretrained": [], "random": []}
        for seed in range(args.seeds):
            for name, encoders in (("pretrained", args.encoders), ("random", None)):
                with tempfile.TemporaryDirectory() as tmp:
                    run_dir = Path(tmp)
                    if args.runs_dir:  # kept: logs, metrics.csv, dialog's val_answers.json
                        run_dir = args.runs_dir / task / f"{name}-seed{seed}"
                        run_dir.mkdir(parents=True, exist_ok=True)
                    scores[name].append(
                        run_task(
                            copy.deepcopy(cfg),
                            encoders,
                            args.minutes,
                            args.max_steps,
                            seed,
                            run_dir,
                        )
                    )
        for metric, chance in metrics.items():
            if isinstance(chance, str):  # a baseline the task logs (the same for every run)
                chance = float(np.mean([s[chance] for s in scores["pretrained"]]))
            elif chance:
                chance = chance(num_val, num_classes, cfg)
            pre = [float(s[metric]) for s in scores["pretrained"]]
            rand = [float(s[metric]) for s in scores["random"]]
            rows.append((task, metric, pre, rand, chance))
            # each task's rows as soon as they exist: a later task's failure keeps them
            print(table_row(rows[-1]), flush=True)
    print(
        f"\n{args.seeds} seeds per cell, mean ± std; 'beats' = the pretrained mean exceeds the "
        "random mean by more than the larger std and exceeds chance / the baseline (n/a: one "
        "seed, no spread)"
    )
    print("\n| task | metric | pretrained | random | chance / baseline | beats |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(table_row(row))


if __name__ == "__main__":
    main()
