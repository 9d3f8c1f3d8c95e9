"""Training subsets: nested across scales, exact counts, curated = the filter's kept set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avpretrain.ablation.grid import Point
from avpretrain.ablation.subset import build_subset, pool_clips, select
from avpretrain.curation.filter import filter_scores
from avpretrain.data.shards import read_index, write_index, write_shard


def fake_pool(root: Path, shards: int = 3, per_shard: int = 10) -> Path:
    """Shards of tiny samples (a JSON member each) with an index, like any ingested pool."""
    pool = root / "pool"
    pool.mkdir()
    for s in range(shards):
        samples = [
            {"__key__": f"c{s}_{i:02d}", "json": json.dumps({"i": i}).encode()}
            for i in range(per_shard)
        ]
        write_shard(pool / f"p-{s:06d}.tar", samples)
    write_index(pool)
    return pool


def fake_scores(root: Path, pool: Path, seed: int = 0) -> Path:
    """A hand-made score cache: random scores per criterion, some missing."""
    rng = np.random.default_rng(seed)
    cache = root / "scores"
    cache.mkdir()
    for shard in read_index(pool)["shards"]:
        keys = [k for name, k in pool_clips({"shards": [shard]}) if name == shard["name"]]
        clips = []
        for k in keys:
            scores = {c: float(rng.random()) for c in ("audio_visual", "temporal", "text_audio")}
            scores["text_visual"] = None if rng.random() < 0.3 else float(rng.random())
            clips.append({"key": k, "category": None, "corruption": None, "scores": scores})
        (cache / f"{shard['name']}.json").write_text(json.dumps({"embedders": {}, "clips": clips}))
    return cache


def point(scale, curated=False, threshold=None, criteria=None) -> Point:
    return Point(0, scale, curated, threshold, criteria)


def test_scales_are_nested_with_exact_counts(tmp_path):
    clips = pool_clips(read_index(fake_pool(tmp_path)))
    assert len(clips) == 30
    small, large = select(point(7), clips), select(point(20), clips)
    assert len(small) == 7 and len(large) == 20
    assert set(small) <= set(large) and large[:7] == small
    half = select(point(0.5), clips)
    assert len(half) == 15 and set(small) <= set(half)
    assert select(point(7), list(reversed(clips))) == small  # by hash, not stored order
    assert select(point(7), clips, seed=1) != small
    assert len(select(point(100), clips)) == 30  # cut to the pool (logged)


def test_curated_subset_is_the_filters_kept_set(tmp_path):
    pool = fake_pool(tmp_path)
    cache = fake_scores(tmp_path, pool)
    clips = pool_clips(read_index(pool))
    records = {}
    for path in cache.glob("*.json"):
        for r in json.loads(path.read_text())["clips"]:
            records[(path.stem, r["key"])] = r["scores"]
    scores = [records[c] for c in clips]
    criteria = ("instance", "language")
    thresholds = {"audio_visual": 0.3, "text_audio": 0.3, "text_visual": 0.3, "text_av": 0.3}
    kept = filter_scores(scores, thresholds, stages=criteria).keep
    expected = {c for c, k in zip(clips, kept, strict=True) if k}
    # by hand: both stages at 0.3, a missing text_visual passes, temporal is not looked at
    by_hand = {
        c
        for c in clips
        if records[c]["audio_visual"] >= 0.3
        and records[c]["text_audio"] >= 0.3
        and (records[c]["text_visual"] is None or records[c]["text_visual"] >= 0.3)
    }
    assert expected == by_hand and 0 < len(expected) < 30
    everything = select(point(30, True, 0.3, criteria), clips, cache)
    assert set(everything) == expected
    few = select(point(3, True, 0.3, criteria), clips, cache)
    assert len(few) == 3 and few == everything[:3]
    assert len(select(point(0.5, True, 0.3, criteria), clips, cache)) == round(len(expected) / 2)
    loose = select(point(30, True, 0.0, criteria), clips, cache)
    assert len(loose) == 30


def test_written_subset_holds_exactly_the_chosen_clips(tmp_path):
    pool = fake_pool(tmp_path)
    folder, count = build_subset(point(13), pool, tmp_path / "sub", shard_size=5)
    index = read_index(folder)
    assert count == 13 and index["total"] == 13
    assert [s["samples"] for s in index["shards"]] == [5, 5, 3]
    written = pool_clips(index)
    chosen = select(point(13), pool_clips(read_index(pool)))
    assert sorted(k for _, k in written) == sorted(k for _, k in chosen)


def test_missing_score_cache_is_named(tmp_path):
    pool = fake_pool(tmp_path)
    clips = pool_clips(read_index(pool))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="p-000000.tar.json"):
        select(point(3, True, 0.5, ("instance",)), clips, tmp_path / "empty")


def test_subset_folder_is_reused_for_the_same_selection_and_replaced_otherwise(tmp_path):
    pool = fake_pool(tmp_path)
    folder, _ = build_subset(point(6), pool, tmp_path / "sub", shard_size=4)
    first = (folder / "subset-000000.tar").stat().st_mtime_ns
    build_subset(point(6), pool, tmp_path / "sub", shard_size=4)
    assert (folder / "subset-000000.tar").stat().st_mtime_ns == first
    build_subset(point(3), pool, tmp_path / "sub", shard_size=4)
    assert read_index(folder)["total"] == 3 and not (folder / "subset-000001.tar").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool", "sub"]  # no temporary left
