r"""The synthetic quality world: clean synthetic clips degraded by known severities, with MOS.

Each clip is a clip of the synthetic world (:func:`avpretrain.data.synthetic.clip.render_clip`,
same ``(cfg, split, index)``), degraded by a :class:`~avpretrain.data.synthetic.degrade.Severity` drawn
from its own random stream, so a clip depends only on ``(cfg, split, index, active_prob)``.
Each degradation is active with probability ``active_prob``, at a severity uniform in [0, 1]
(and the exposure direction is a coin flip). The JSON stores the ground truth::

    annotations: {"mos": {"overall", "video", "audio"},   # mos_model(severity), 0-100
                  "severity": {"blur": ..., ..., "darken": false}}

Written as ``out/train/quality-000000.tar ...`` and ``out/val/...``, each with ``index.json``
(which also records the synthetic config and ``active_prob``)::

    avpretrain synth-quality --out data/quality --clips 512 --seconds 3 --frames 16 \
        --frame-size 64

16 frames over 3 s store 5.3 frames per second, so the ``dense`` frame sampling of the quality
recipe (8 consecutive frames) sees a stutter's held frames. With ``--folds K`` the ``--clips``
clips (of the train split's random streams) are dealt to ``out/fold0 .. fold{K-1}`` instead,
for :mod:`avpretrain.av_quality.kfold`; each clip's ``annotations.fold`` records its fold.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from avpretrain.arguments import field_values
from avpretrain.data.folds import assign_folds
from avpretrain.data.schema import encode_sample
from avpretrain.data.shards import shard_name, write_index, write_shard
from avpretrain.data.synthetic.clip import SPLITS, clip_meta, render_clip
from avpretrain.data.synthetic.config import SynthConfig
from avpretrain.data.synthetic.degrade import Severity, degrade_audio, degrade_video, mos_model
from avpretrain.data.synthetic.world import parse_synth_args, synth_parser

log = logging.getLogger(__name__)
SHARD_PREFIX = "quality"
ACTIVE_PROB = 0.5
# SynthConfig fields without a command-line option: quality clips are degraded, not corrupted.
QUALITY_SKIP = frozenset({"corrupt_fraction"})
# Stream id under (seed, split, ...): the synthetic world uses 0 (clips) and 1 (corruptions).
_QUALITY_STREAM = 2


def draw_severity(
    cfg: SynthConfig, split: str, index: int, active_prob: float = ACTIVE_PROB
) -> Severity:
    """The severities of clip ``index`` of ``split``.

    Each degradation is active with probability ``active_prob`` at a severity uniform in [0, 1].
    """
    if not 0.0 <= active_prob <= 1.0:
        raise ValueError(f"active_prob must be in [0, 1], got {active_prob}")
    rng = np.random.default_rng([cfg.seed, SPLITS[split], _QUALITY_STREAM, index])
    names = (*Severity.VIDEO, *Severity.AUDIO)
    active = rng.random(len(names)) < active_prob
    levels = rng.random(len(names))
    values = {n: float(s) if a else 0.0 for n, a, s in zip(names, active, levels, strict=True)}
    return Severity(**values, darken=bool(rng.random() < 0.5))


def noise_seed(cfg: SynthConfig, split: str, index: int) -> int:
    """Seed of the clip's noise patterns (video and audio)."""
    return int(
        np.random.default_rng([cfg.seed, SPLITS[split], _QUALITY_STREAM, index, 1]).integers(2**31)
    )


def make_quality_sample(
    cfg: SynthConfig, split: str, index: int, severity: Severity, fold: int | None = None
) -> dict[str, Any]:
    """Render clip ``index`` of ``split``, degrade it by ``severity``, encode it as a sample.

    The sample's JSON ``annotations`` hold ``mos_model(severity)``, the severities and ``fold`` (if
    given).
    """
    clip = render_clip(cfg, split, index)
    seed = noise_seed(cfg, split, index)
    frames = degrade_video(clip.frames, severity, seed)
    audio = degrade_audio(clip.mixture, severity, cfg.sample_rate, seed)
    meta = clip_meta(cfg, clip, clip.caption, None)
    meta["annotations"] = {"mos": mos_model(severity), "severity": asdict(severity)}
    if fold is not None:
        meta["annotations"]["fold"] = fold
    return encode_sample(clip.key, list(frames), audio, meta)


def _write_shard_job(
    cfg: SynthConfig,
    split: str,
    indices: list[int],
    path: Path,
    active_prob: float,
    fold: int | None = None,
) -> int:
    samples = (
        make_quality_sample(cfg, split, i, draw_severity(cfg, split, i, active_prob), fold)
        for i in indices
    )
    return write_shard(path, samples)


def _run_jobs(jobs: list[tuple], workers: int) -> list[int]:
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            return list(pool.map(_write_shard_job, *zip(*jobs, strict=True)))
    return [_write_shard_job(*job) for job in jobs]


def _plan_folder(directory: Path, indices: list[int], shard_size: int) -> list[tuple[str, list]]:
    """(shard name, clip indices) of one output folder.

    Stale shards of an earlier, larger world are removed (its index would list them).
    """
    directory.mkdir(parents=True, exist_ok=True)
    plan = [
        (shard_name(SHARD_PREFIX, k), indices[start : start + shard_size])
        for k, start in enumerate(range(0, len(indices), shard_size))
    ]
    names = {name for name, _ in plan}
    for tar in directory.glob(f"{SHARD_PREFIX}-*.tar"):
        if tar.name not in names:
            log.warning("removing stale shard %s", tar)
            tar.unlink()
    return plan


def write_quality_world(
    out_dir: str | Path, cfg: SynthConfig, active_prob: float = ACTIVE_PROB, workers: int = 1
) -> dict[str, Any]:
    """Write the train and val splits of a synthetic quality world.

    Args:
        out_dir: output folder; gets ``train/`` and ``val/``, each with shards
            ``quality-000000.tar``, ... and an ``index.json``.
        cfg: the clean world (its ``corrupt_fraction`` is ignored: quality clips are degraded,
            never swapped).
        active_prob: probability that each degradation is applied to a clip.
        workers: processes writing shards in parallel; the output does not depend on it.

    Returns:
        summary ``{out, seconds, train: {clips, shards}, val: {...}}``.
    """
    if not 0.0 <= active_prob <= 1.0:
        raise ValueError(f"active_prob must be in [0, 1], got {active_prob}")
    out = Path(out_dir)
    start = time.perf_counter()
    jobs, splits = [], {}
    for split, n in (("train", cfg.clips), ("val", cfg.val_clips)):
        assert n is not None  # SynthConfig resolves val_clips
        plan = _plan_folder(out / split, list(range(n)), cfg.shard_size)
        jobs += [(cfg, split, idx, out / split / name, active_prob) for name, idx in plan]
        splits[split] = {"clips": n, "shards": len(plan)}
    counts = _run_jobs(jobs, workers)
    for split in splits:
        split_counts = {
            job[3].name: c for job, c in zip(jobs, counts, strict=True) if job[1] == split
        }
        write_index(
            out / split, split_counts, split=split, synth=asdict(cfg), active_prob=active_prob
        )
    return {"out": str(out), "seconds": round(time.perf_counter() - start, 3), **splits}


def write_quality_folds(
    out_dir: str | Path,
    cfg: SynthConfig,
    folds: int,
    active_prob: float = ACTIVE_PROB,
    workers: int = 1,
) -> dict[str, Any]:
    """Write ``cfg.clips`` quality clips (the train split's streams) dealt to ``folds`` folds.

    Each clip is its own group (no two clips share a source), dealt by
    :func:`~avpretrain.data.folds.assign_folds` with the world seed.

    Args:
        out_dir: output folder; gets ``fold0/ .. fold{folds-1}/``, each with shards and an
            ``index.json`` (recording the config, ``active_prob``, ``fold`` and ``folds``).
        cfg: the clean world (``val_clips`` is ignored).
        folds: number of folds K (>= 2).
        active_prob: probability that each degradation is applied to a clip.
        workers: processes writing shards in parallel; the output does not depend on it.

    Returns:
        summary ``{out, seconds, folds: [clips of fold 0, ...]}``.
    """
    if not 0.0 <= active_prob <= 1.0:
        raise ValueError(f"active_prob must be in [0, 1], got {active_prob}")
    out = Path(out_dir)
    start = time.perf_counter()
    fold_of = assign_folds([str(i) for i in range(cfg.clips)], folds, cfg.seed)
    jobs = []
    for k in range(folds):
        indices = [i for i, f in enumerate(fold_of) if f == k]
        plan = _plan_folder(out / f"fold{k}", indices, cfg.shard_size)
        jobs += [(cfg, "train", idx, out / f"fold{k}" / n, active_prob, k) for n, idx in plan]
    counts = _run_jobs(jobs, workers)
    for k in range(folds):
        fold_counts = {job[3].name: c for job, c in zip(jobs, counts, strict=True) if job[5] == k}
        write_index(
            out / f"fold{k}",
            fold_counts,
            split=f"fold{k}",
            synth=asdict(cfg),
            active_prob=active_prob,
            fold=k,
            folds=folds,
        )
    sizes = [fold_of.count(k) for k in range(folds)]
    return {"out": str(out), "seconds": round(time.perf_counter() - start, 3), "folds": sizes}


def main(argv: list[str] | None = None) -> int:
    """``python -m avpretrain.data.synthetic.av_quality_world``: write a quality world, print a summary."""
    description = "Write the synthetic quality world as shards."
    p = synth_parser("avpretrain synth-quality", description, QUALITY_SKIP)
    p.add_argument("--active-prob", type=float, default=ACTIVE_PROB, help="P(degradation on)")
    p.add_argument(
        "--folds", type=int, default=None, help="write fold0..fold{K-1} of --clips clips instead"
    )
    args = parse_synth_args(p, sys.argv[1:] if argv is None else argv, QUALITY_SKIP)
    try:
        cfg = SynthConfig(**field_values(args, SynthConfig))
        if args.folds is None:
            summary = write_quality_world(args.out, cfg, args.active_prob, args.workers)
        else:
            summary = write_quality_folds(args.out, cfg, args.folds, args.active_prob, args.workers)
    except ValueError as err:
        print(f"av_quality_world: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main())
