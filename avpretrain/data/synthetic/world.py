"""The synthetic audio-visual world: ``avpretrain synth``, the framework's built-in dataset.

Clips show coloured shapes (each class with its own look and sound) that light up and grow while
they sound, with silent objects, off-screen sounds, per-second on/off events, captions and
questions. Every downstream task has exact ground truth here (see ``synth_clip``), which is how
the heads are tested. The world is written as webdataset shards in the schema of
:mod:`avpretrain.data.schema`::

    out/train/synth-000000.tar ... index.json
    out/val/synth-000000.tar ... index.json

Example::

    avpretrain synth --out data/synth --clips 1024 --seconds 10 --frames 10 --corrupt 0.05
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from avpretrain.arguments import canonical_flags, dataclass_parser, field_values
from avpretrain.data.shards import shard_name, write_index, write_shard
from avpretrain.data.synthetic.classes import class_table
from avpretrain.data.synthetic.clip import CORRUPTIONS, Corruption, corruption_plan, make_sample
from avpretrain.data.synthetic.config import SynthConfig
from avpretrain.data.synthetic.questions import ANSWER_VOCAB

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser, Namespace

__all__ = ["SynthConfig", "main", "write_world"]

log = logging.getLogger(__name__)
SHARD_PREFIX = "synth"
ANSWERS_FILE = "answers.json"  # the question answers' vocabulary, beside train/ and val/
# The command's flag names from before its options were generated from SynthConfig's fields.
FLAG_ALIASES = {
    "classes": "num_classes",
    "seconds": "clip_seconds",
    "frames": "num_frames",
    "corrupt": "corrupt_fraction",
}


def _write_shard_job(
    cfg: SynthConfig, split: str, indices: range, path: Path, corruptions: dict[int, Corruption]
) -> int:
    samples = (make_sample(cfg, split, i, corruptions.get(i)) for i in indices)
    return write_shard(path, samples)


def _remove_stale(directory: Path, keep: set[str]) -> None:
    # A previous, larger world in the same folder would otherwise be listed by the index.
    for tar in directory.glob(f"{SHARD_PREFIX}-*.tar"):
        if tar.name not in keep:
            log.warning("removing stale shard %s", tar)
            tar.unlink()


def write_world(out_dir: str | Path, cfg: SynthConfig, workers: int = 1) -> dict[str, Any]:
    """Write the train and val splits of a synthetic world.

    Args:
        out_dir: output folder; ``train/`` and ``val/`` are created in it, each with shards
            ``synth-000000.tar``, ... and an ``index.json`` that also records the config and the
            class table, and ``answers.json`` beside them: the answer vocabulary of the world's
            questions (a JSON list, the ``answers`` file of the music_avqa task).
        cfg: the world.
        workers: processes writing shards in parallel; the output does not depend on it.

    Returns:
        summary ``{out, seconds, train: {clips, shards, corrupted}, val: {...}}`` where
        ``corrupted`` counts clips per corruption kind.
    """
    out = Path(out_dir)
    start = time.perf_counter()
    jobs, splits = [], {}
    for split, n in (("train", cfg.clips), ("val", cfg.val_clips)):
        assert n is not None  # SynthConfig resolves val_clips
        directory = out / split
        directory.mkdir(parents=True, exist_ok=True)
        plan = corruption_plan(cfg, split, n)
        names = []
        for k in range(math.ceil(n / cfg.shard_size)):
            indices = range(k * cfg.shard_size, min(n, (k + 1) * cfg.shard_size))
            names.append(shard_name(SHARD_PREFIX, k))
            subset = {i: plan[i] for i in indices if i in plan}
            jobs.append((cfg, split, indices, directory / names[-1], subset))
        _remove_stale(directory, set(names))
        corrupted = {kind: sum(c.kind == kind for c in plan.values()) for kind in CORRUPTIONS}
        splits[split] = {"clips": n, "shards": len(names), "corrupted": corrupted}
    bar = partial(tqdm, total=len(jobs), desc="synth", unit="shard", disable=None)  # TTY only
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            counts = list(bar(pool.map(_write_shard_job, *zip(*jobs, strict=True))))
    else:
        counts = [_write_shard_job(*job) for job in bar(jobs)]
    classes = [asdict(spec) for spec in class_table(cfg.num_classes, cfg.difficulty)]
    for split in splits:
        directory = out / split
        split_counts = {
            job[3].name: c for job, c in zip(jobs, counts, strict=True) if job[1] == split
        }
        write_index(directory, split_counts, split=split, synth=asdict(cfg), classes=classes)
    (out / ANSWERS_FILE).write_text(json.dumps(list(ANSWER_VOCAB), indent=1) + "\n")
    return {"out": str(out), "seconds": round(time.perf_counter() - start, 3), **splits}


def synth_parser(prog: str, description: str, skip: frozenset[str] = frozenset()) -> ArgumentParser:
    """``--out``, ``--clips``, ``--workers`` and an option per :class:`SynthConfig` field.

    Args:
        prog: the command, for the usage line.
        description: what the command does.
        skip: fields the command leaves at their defaults.
    """
    aliases = {old: name for old, name in FLAG_ALIASES.items() if name not in skip}
    p = dataclass_parser(SynthConfig, prog, description, aliases, skip={"clips", *skip})
    p.add_argument("--out", required=True, help="output folder (gets train/ and val/)")
    p.add_argument("--clips", type=int, required=True, help="training clips")
    p.add_argument("--workers", type=int, default=1, help="shard-writing processes")
    return p


def parse_synth_args(
    parser: ArgumentParser, argv: list[str], skip: frozenset[str] = frozenset()
) -> Namespace:
    """Parse ``argv`` with a :func:`synth_parser`, older flag names and dashes included."""
    names = {f.name for f in fields(SynthConfig)} - skip
    return parser.parse_args(canonical_flags(argv, names, FLAG_ALIASES))


def main(argv: list[str]) -> int:
    """``avpretrain synth``: write a world and print a one-line summary."""
    description = "Write the synthetic audio-visual world as shards."
    args = parse_synth_args(synth_parser("avpretrain synth", description), argv)
    try:
        cfg = SynthConfig(**field_values(args, SynthConfig))
    except ValueError as err:
        print(f"avpretrain synth: {err}", file=sys.stderr)
        return 2
    s = write_world(args.out, cfg, workers=args.workers)
    n_bad = sum(sum(s[split]["corrupted"].values()) for split in ("train", "val"))
    print(
        f"synth: {s['train']['clips']} train + {s['val']['clips']} val clips "
        f"({s['train']['shards']} + {s['val']['shards']} shards, {n_bad} corrupted, "
        f"{cfg.num_classes} classes, {cfg.difficulty}) -> {s['out']} in {s['seconds']:.2f} s"
    )
    return 0
