"""Chance levels of the synthetic tasks in ``bench_heads.py``, computed from the world itself.

Localization: uniform random maps (and the ceiling of the ground truth on the patch grid).
Parsing: every class predicted in every segment. Question answering: each (modality, type)
answered with its most common training answer.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from avpretrain.data.schema import JSON_EXT
from avpretrain.data.shards import read_index, read_raw_samples
from avpretrain.metrics.localization import binarize_heatmap, ciou, localization_summary


@cache
def random_map_scores(world: Path, frame_size: int, grid: int, seed: int = 0) -> dict[str, float]:
    """EZ-VSL figures of uniform random [grid, grid] maps on the world's annotated val clips.

    The chance level of localization. The synthetic objects fill at most one cell of a 3 x 3
    grid and EZ-VSL's median binarisation predicts half the frame, so a clip's ciou stays
    near 2 x its object's area: the success rate at 0.5 (``val/cIoU``) is 0 for any map here,
    while the mean cIoU and the AUC still rank models.
    """
    from avpretrain.data.loading.audio import FbankConfig
    from avpretrain.data.loading.datamodule import AVDataModule
    from avpretrain.tasks.targets.localization import synth_localization_targets

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


def localization_chance(metric: str):
    """``metric`` of :func:`random_map_scores` for a localization recipe's world, on the patch
    grid of the recipe's video encoder (its backbone's ``video_patch_size`` or ``patch_size``)."""

    def chance(n: int, c: int, cfg: dict) -> float:
        backbone = cfg["model"]["init_args"].get("backbone") or {}
        patch = backbone.get("video_patch_size") or backbone.get("patch_size") or 16
        frame_size = cfg["data"]["init_args"]["frame_size"]
        world = Path(cfg["data"]["init_args"]["val_urls"]).parent
        return random_map_scores(world, frame_size, frame_size // patch)[metric]

    return chance


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
    from avpretrain.tasks.targets.music_avqa import official_name

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
    from avpretrain.data.loading.audio import FbankConfig
    from avpretrain.data.loading.datamodule import AVDataModule
    from avpretrain.metrics.parsing import ParsingMetrics
    from avpretrain.tasks.parsing import metric_key
    from avpretrain.tasks.targets.parsing import parsing_targets

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


def parsing_chance(metric: str):
    """``metric`` of :func:`constant_parsing_scores` for a parsing recipe's world."""

    def chance(n: int, c: int, cfg: dict) -> float:
        data = cfg["data"]["init_args"]
        world = Path(data["val_urls"]).parent
        return constant_parsing_scores(world, data["num_classes"], data["num_frames_per_clip"])[
            metric
        ]

    return chance


def majority_chance(metric: str):
    """``metric`` of :func:`majority_answer_scores` for a question-answering recipe's world."""
    return lambda n, c, cfg: majority_answer_scores(
        Path(cfg["data"]["init_args"]["val_urls"]).parent
    )[metric]
