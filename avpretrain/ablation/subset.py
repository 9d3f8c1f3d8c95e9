"""The training subset of a grid point: curated or not, at a data scale, written as shards.

Clips are ranked once by a seeded hash of ``<shard>/<key>`` (independent of how the pool is
sharded), and a point takes the first N of the clips it may select in that order. So the subsets
of one curation setting are nested: the 10K subset is inside the 52K one. Curated points select
only the clips the alignment filter keeps (:func:`avpretrain.curation.filter.filter_scores`, on
the score cache of ``avpretrain curate``: ``scores/<shard>.json``) with the point's threshold on
every criterion of its active stages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avpretrain.ablation.grid import Point
from avpretrain.curation.filter import STAGES, filter_scores
from avpretrain.data.shards import (
    INDEX_NAME,
    read_index,
    read_raw_samples,
    shard_name,
    write_index,
    write_shard,
)

log = logging.getLogger(__name__)
ClipId = tuple[str, str]  # (shard name, key)


def pool_clips(index: dict[str, Any]) -> list[ClipId]:
    """Every clip of a shard index, as (shard name, key), in stored order."""
    clips = []
    for shard in index["shards"]:
        keys: dict[str, None] = {}
        with tarfile.open(shard["url"]) as tar:
            for member in tar:
                if member.isfile():
                    keys[member.name.split("/")[-1].split(".", 1)[0]] = None
        clips += [(shard["name"], key) for key in keys]
    return clips


def rank(clips: list[ClipId], seed: int) -> list[ClipId]:
    """The clips in the fixed pseudo-random order every subset is a prefix of."""

    def digest(clip: ClipId) -> str:
        return hashlib.sha1(f"{seed}:{clip[0]}/{clip[1]}".encode()).hexdigest()

    return sorted(clips, key=digest)


def load_scores(scores_dir: str | Path, clips: list[ClipId]) -> list[dict[str, float | None]]:
    """Scores of ``clips`` from a score cache folder (``<shard>.json`` per shard).

    Raises:
        FileNotFoundError: a shard has no cache file.
        ValueError: naming the file, when a clip has no record there.
    """
    scores_dir = Path(scores_dir)
    by_shard: dict[str, dict[str, dict]] = {}
    out = []
    for shard, key in clips:
        if shard not in by_shard:
            path = scores_dir / f"{shard}.json"
            if not path.exists():
                raise FileNotFoundError(
                    f"{path}: no score cache for shard {shard}; run "
                    "`avpretrain curate` on the pool first"
                )
            records = json.loads(path.read_text())["clips"]
            by_shard[shard] = {r["key"]: r["scores"] for r in records}
        if key not in by_shard[shard]:
            raise ValueError(f"{scores_dir / (shard + '.json')}: no scores for clip {key!r}")
        out.append(by_shard[shard][key])
    return out


def thresholds_for(point: Point) -> dict[str, float]:
    """The point's threshold on every criterion of its active stages."""
    assert point.threshold is not None and point.criteria is not None
    return {c: point.threshold for stage in point.criteria for c in STAGES[stage]}


def select(
    point: Point,
    clips: list[ClipId],
    scores_dir: str | Path | None = None,
    quantile: bool = False,
    seed: int = 0,
) -> list[ClipId]:
    """The clips of a point's training subset, in rank order.

    Args:
        point: the grid point (scale, curated, threshold, criteria).
        clips: the pool, as :func:`pool_clips` lists it.
        scores_dir: the score cache (needed for curated points).
        quantile: read the threshold as a quantile (``avpretrain curate --quantile``).
        seed: the ranking seed.

    A scale above the selectable count is cut to it (logged); a fraction is of the selectable
    clips, rounded, at least one.
    """
    selectable = clips
    if point.curated:
        if scores_dir is None:
            raise ValueError("a curated point needs the score cache (data.scores)")
        scores = load_scores(scores_dir, clips)
        stages = point.criteria or ()
        keep = filter_scores(scores, thresholds_for(point), quantile, stages).keep
        selectable = [c for c, k in zip(clips, keep, strict=True) if k]
    ordered = rank(selectable, seed)
    if isinstance(point.scale, float):
        count = max(1, round(point.scale * len(ordered)))
    else:
        count = point.scale
    if count > len(ordered):
        log.warning(
            "ablation: %s asks for %d clips, only %d selectable; using them all",
            point.name,
            count,
            len(ordered),
        )
    return ordered[:count]


def _chosen_samples(index: dict[str, Any], chosen: set[ClipId]) -> Iterator[dict[str, Any]]:
    for shard in index["shards"]:
        if any(c[0] == shard["name"] for c in chosen):
            for sample in read_raw_samples(shard["url"]):
                if (shard["name"], sample["__key__"]) in chosen:
                    yield sample


def _digest(chosen: list[ClipId], shard_size: int) -> str:
    text = json.dumps([shard_size, sorted(chosen)])
    return hashlib.sha1(text.encode()).hexdigest()


def _existing_digest(out: Path) -> str | None:
    index = out / INDEX_NAME
    if not index.exists():
        return None
    return json.loads(index.read_text()).get("subset", {}).get("digest")


def write_subset(
    index: dict[str, Any], chosen: list[ClipId], out: str | Path, shard_size: int = 256
) -> Path:
    """Copy the chosen clips into shards of ``shard_size`` under ``out`` with an ``index.json``.

    The folder is written beside ``out`` and renamed into place, and reused when it already
    holds the same selection; so processes of one multi-GPU run may all call this at once.

    Returns:
        the subset folder (``train_urls`` of the pretraining).
    """
    out = Path(out)
    digest = _digest(chosen, shard_size)
    if _existing_digest(out) == digest:
        return out
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    samples = _chosen_samples(index, set(chosen))
    counts, part = {}, 0
    while True:
        batch = [s for _, s in zip(range(shard_size), samples, strict=False)]
        if not batch:
            break
        name = shard_name("subset", part)
        counts[name] = write_shard(tmp / name, batch)
        part += 1
    if sum(counts.values()) != len(chosen):
        raise ValueError(f"{out}: wrote {sum(counts.values())} clips, expected {len(chosen)}")
    write_index(tmp, counts, subset={"clips": len(chosen), "digest": digest})
    if out.exists() and _existing_digest(out) != digest:
        shutil.rmtree(out)  # a subset of an earlier, different selection
    try:
        os.rename(tmp, out)
    except OSError:
        if _existing_digest(out) != digest:  # not another process's identical copy
            raise
        shutil.rmtree(tmp)
    return out


def build_subset(
    point: Point,
    pool: str | Path,
    out: str | Path,
    scores_dir: str | Path | None = None,
    quantile: bool = False,
    seed: int = 0,
    shard_size: int = 256,
) -> tuple[Path, int]:
    """Select a point's subset of ``pool`` and write it to ``out``; return (folder, clips)."""
    index = read_index(pool)
    chosen = select(point, pool_clips(index), scores_dir, quantile, seed)
    if not chosen:
        raise ValueError(f"{point.name}: the subset is empty (the filter kept no clip)")
    return write_subset(index, chosen, out, shard_size), len(chosen)
