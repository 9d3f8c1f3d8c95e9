"""Each downstream head on the synthetic world, from pretrained and from random encoders.

Trains every task's synthetic recipe for a bounded time through the same LightningCLI path as
``avpretrain fit``, validates, and prints one table: task, metric, pretrained, random, chance.

    avpretrain demo --out demo_out              # writes demo_out/world and demo_out/encoders.pt
    python scripts/bench_heads.py --world demo_out/world --encoders demo_out/encoders.pt
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from avpretrain.curation.cli import read_raw_samples
from avpretrain.data.schema import JSON_EXT
from avpretrain.data.shards import read_index
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.metrics.localization import binarize_heatmap, ciou, localization_summary

ROOT = Path(__file__).resolve().parents[1]


@cache
def random_map_scores(world: Path, frame_size: int, grid: int, seed: int = 0) -> dict[str, float]:
    """EZ-VSL figures of uniform random [grid, grid] maps on the world's annotated val clips.

    The chance level of localization. The synthetic objects fill at most one cell of a 3 x 3
    grid and EZ-VSL's median binarisation predicts half the frame, so a clip's ciou stays
    near 2 x its object's area: the success rate at 0.5 (``val/cIoU``) is 0 for any map here,
    while the mean cIoU and the AUC still rank models.
    """
    from avpretrain.data.audio import FbankConfig
    from avpretrain.data.datamodule import AVDataModule
    from avpretrain.tasks.localization_targets import synth_localization_targets

    dm = AVDataModule(
        train_urls=str(world / "train"),
        val_urls=str(world / "val"),
        num_workers=0,
        frame_size=frame_size,
        frame_augment=False,
        targets=synth_localization_targets,
        extra_members=["gt.npz"],
        fbank=FbankConfig(target_frames=16),
    )
    dm.setup("validate")
    rng = np.random.default_rng(seed)
    gts = [
        gt.float()
        for batch in dm.val_dataloader()
        for gt, has_gt in zip(batch["gt_map"], batch["has_gt"], strict=True)
        if has_gt
    ]
    oracle = [
        ciou(binarize_heatmap(F.adaptive_avg_pool2d(gt[None, None], grid)[0, 0], frame_size), gt)
        for gt in gts
    ]
    print("localization ceiling (ground truth pooled to the patch grid):")
    print(localization_summary(np.asarray(oracle)))
    cious = [ciou(binarize_heatmap(rng.random((grid, grid)), frame_size), gt) for gt in gts]
    return localization_summary(np.asarray(cious))


def _localization_chance(metric: str):
    return lambda n, c, cfg: random_map_scores(
        Path(cfg["data"]["init_args"]["val_urls"]).parent,
        cfg["data"]["init_args"]["frame_size"],
        cfg["data"]["init_args"]["frame_size"] // 16,
    )[metric]


def _questions(split: Path) -> list[dict]:
    """Every synthetic question of a split's clips (``synthetic.questions`` of each JSON)."""
    out = []
    for shard in read_index(split)["shards"]:
        for sample in read_raw_samples(split / shard["url"]):
            out += json.loads(sample[JSON_EXT])["synthetic"]["questions"]
    return out


@cache
def majority_answer_scores(world: Path) -> dict[str, float]:
    """Chance level of question answering, keyed like the task's logs (``val/acc``, per modality
    and per type): each (modality, type) answered with its most common training answer."""
    from avpretrain.metrics.music_avqa import MODALITY_NAMES, TYPE_NAMES
    from avpretrain.tasks.music_avqa import metric_key
    from avpretrain.tasks.music_avqa_targets import official_name

    by_kind: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for q in _questions(world / "train"):
        by_kind[official_name(q["modality"]), official_name(q["type"])][q["answer"]] += 1
    majority = {kind: counts.most_common(1)[0][0] for kind, counts in by_kind.items()}
    hits: dict[str, list[bool]] = defaultdict(list)
    for q in _questions(world / "val"):
        kind = official_name(q["modality"]), official_name(q["type"])
        hit = majority.get(kind) == q["answer"]
        for name in ("Overall", MODALITY_NAMES[kind[0]], TYPE_NAMES[kind]):
            hits[f"val/{metric_key(name)}"].append(hit)
    return {key: sum(h) / len(h) for key, h in hits.items()}


@cache
def constant_parsing_scores(world: Path, num_classes: int, num_segments: int) -> dict[str, float]:
    """Chance level of parsing: every class predicted in every segment, audio and visual."""
    from avpretrain.data.audio import FbankConfig
    from avpretrain.data.datamodule import AVDataModule
    from avpretrain.metrics.parsing import ParsingMetrics
    from avpretrain.tasks.parsing import metric_key
    from avpretrain.tasks.parsing_targets import parsing_targets

    dm = AVDataModule(
        train_urls=str(world / "train"),
        val_urls=str(world / "val"),
        num_workers=0,
        num_classes=num_classes,
        num_frames_per_clip=num_segments,
        frame_size=16,
        targets=parsing_targets,
        fbank=FbankConfig(target_frames=16),
    )
    dm.setup("validate")
    metrics = ParsingMetrics()
    for batch in dm.val_dataloader():
        audio, visual = batch["audio_gt"], batch["visual_gt"]
        metrics.update(torch.ones_like(audio), torch.ones_like(visual), audio, visual)
    return {f"val/{metric_key(k)}": v for k, v in metrics.compute().items()}


def _parsing_chance(metric: str):
    def chance(n: int, c: int, cfg: dict) -> float:
        data = cfg["data"]["init_args"]
        world = Path(data["val_urls"]).parent
        return constant_parsing_scores(world, data["num_classes"], data["num_frames_per_clip"])[
            metric
        ]

    return chance


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


def _majority_chance(metric: str):
    return lambda n, c, cfg: majority_answer_scores(
        Path(cfg["data"]["init_args"]["val_urls"]).parent
    )[metric]


# task: (recipe, {metric logged: chance level, a function of the validation size, the classes and
# the recipe, or the name of a baseline metric the task logs})
TASKS = {
    "classification": ("classification/synth_linear.yaml", {"val/acc": lambda n, c, cfg: 1 / c}),
    "retrieval": ("retrieval/synth.yaml", {"val/a2v_R1": lambda n, c, cfg: 100 / n}),
    "localization": (
        "localization/synth.yaml",
        {
            "val/mean_cIoU": _localization_chance("mean_cIoU"),
            "val/AUC": _localization_chance("AUC"),
            "val/slavc_AP": None,
        },
    ),
    "segmentation": ("segmentation/synth.yaml", {"val/mIoU": None}),
    "parsing": (
        "parsing/synth.yaml",
        {
            metric: _parsing_chance(metric)
            for metric in ("val/segment_type_at_av", "val/event_type_at_av")
        },
    ),
    # separation's chance level is the unseparated mixture, which the task logs itself
    "separation": ("separation/synth.yaml", {"val/SDR": "val/SDR_mix"}),
    "music_avqa": (
        "music_avqa/synth.yaml",
        {f"val/{key}": _majority_chance(f"val/{key}") for key in QA_ACCURACIES},
    ),
}


def load_recipe(recipe: str, world: Path) -> dict:
    """A task recipe reading ``world``'s train and val shards with one loader worker."""
    cfg = yaml.safe_load((ROOT / "tasks" / recipe).read_text())
    data = cfg["data"]["init_args"]
    data.update(train_urls=str(world / "train"), val_urls=str(world / "val"), num_workers=1)
    return cfg


def run_task(cfg: dict, encoders: str | None, minutes: float, tmp: Path) -> dict:
    """Fit a recipe for ``minutes`` and return its final validation metrics."""
    cfg["trainer"].update(
        max_time=f"00:00:{int(minutes):02d}:{round(minutes % 1 * 60):02d}",
        max_epochs=1000,
        default_root_dir=str(tmp),
        enable_progress_bar=False,
        enable_model_summary=False,
        logger={
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(tmp)},
        },
    )
    cfg["model"]["init_args"]["encoders"] = encoders
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cli = run_lightning_cli(["fit", "--config", str(path)])
    return cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", required=True, type=Path, help="synthetic world (train/, val/)")
    p.add_argument("--encoders", required=True, help="pretrained encoders (avpretrain export)")
    p.add_argument("--minutes", type=float, default=1.0, help="training time per run")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    args = p.parse_args()
    index = yaml.safe_load((args.world / "val" / "index.json").read_text())
    num_val, num_classes = index["total"], index["synth"]["num_classes"]
    rows = []
    for task in args.tasks:
        recipe, metrics = TASKS[task]
        cfg = load_recipe(recipe, args.world)
        scores = {}
        for name, encoders in (("pretrained", args.encoders), ("random", None)):
            with tempfile.TemporaryDirectory() as tmp:
                scores[name] = run_task(copy.deepcopy(cfg), encoders, args.minutes, Path(tmp))
        for metric, chance in metrics.items():
            if isinstance(chance, str):  # a baseline the task logs
                chance = scores["pretrained"][chance]
            elif chance:
                chance = chance(num_val, num_classes, cfg)
            level = "-" if chance is None else f"{chance:.3f}"
            pre, rand = scores["pretrained"][metric], scores["random"][metric]
            rows.append((task, metric, pre, rand, level))
    print("\n| task | metric | pretrained | random | chance |\n|---|---|---|---|---|")
    for task, metric, pre, rand, level in rows:
        print(f"| {task} | {metric} | {pre:.3f} | {rand:.3f} | {level} |")


if __name__ == "__main__":
    main()
