"""Shared fixtures: tiny synthetic worlds written once per test session.

``tiny_world`` is clean (no corrupted clips), so every clip's audio is the sum of its ground-truth
sources and its caption describes it. ``tiny_world_corrupt`` is the same world (same seed, so its
uncorrupted clips are byte-identical) with 3 train and 1 val clip of each corruption kind.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from avpretrain.data.synthetic.config import SynthConfig

TINY_WORLD = SynthConfig(
    clips=24,
    val_clips=8,
    num_classes=4,
    clip_seconds=2.0,
    num_frames=4,
    frame_size=32,
    sample_rate=16000,
    max_objects=3,
    seed=0,
    shard_size=8,
    corrupt_fraction=0.0,
)


@pytest.fixture(scope="session")
def tiny_world_config() -> SynthConfig:
    """Config of ``tiny_world``: 24 train / 8 val clips of 2 s, 4 frames of 32 x 32, 4 classes."""
    return replace(TINY_WORLD)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder with ``train/`` (3 shards of 8) and ``val/`` (1 shard), each with ``index.json``,
    and ``answers.json``."""
    from avpretrain.data.synthetic.world import (
        write_world,  # only sessions that use the world pay for it
    )

    out = tmp_path_factory.mktemp("tiny_world")
    write_world(out, TINY_WORLD)
    return out


@pytest.fixture(scope="session")
def tiny_world_corrupt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_world`` with ``corrupt_fraction=0.125``: 3 train / 1 val clip per corruption kind."""
    from avpretrain.data.synthetic.world import write_world

    out = tmp_path_factory.mktemp("tiny_world_corrupt")
    write_world(out, replace(TINY_WORLD, corrupt_fraction=0.125))
    return out
