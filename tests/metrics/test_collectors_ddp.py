"""The collectors under a real sync: two gloo processes holding unequal shares of the updates
score the same as one process holding them all."""

from __future__ import annotations

import os
import pickle
import socket

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from avpretrain.metrics.av_quality import QualityMetrics
from avpretrain.metrics.caption import CaptionMetrics
from avpretrain.metrics.classification import ClassificationMetrics
from avpretrain.metrics.music_avqa import AVQAAccuracy
from avpretrain.metrics.parsing import ParsingMetrics
from avpretrain.metrics.retrieval import RetrievalMetrics
from avpretrain.metrics.segmentation import SegmentationMetrics

KINDS = [("Audio", "Counting"), ("Other", "x"), ("Visual", "Location")]


def _cases() -> dict[str, tuple]:
    """name -> (make the collector, its three batches of unequal sizes)."""
    rng = np.random.default_rng(0)
    sizes = (3, 1, 2)
    captions = [
        ([f"k{i}_{j}" for j in range(n)], ["a dog"] * n, [["a dog", "the dog"]] * n)
        for i, n in enumerate(sizes)
    ]
    return {
        "classification": (
            ClassificationMetrics,
            [(rng.random((n, 4)), rng.integers(0, 4, n)) for n in sizes],
        ),
        "retrieval": (
            RetrievalMetrics,
            [(rng.normal(size=(n, 3)), rng.normal(size=(n, 3))) for n in sizes],
        ),
        "segmentation": (
            SegmentationMetrics,
            [
                (
                    rng.random((n, 8, 8)),
                    rng.random((n, 8, 8)) > 0.6,
                    [f"v{k % 2}" for k in range(n)],
                )
                for n in sizes
            ],
        ),
        "parsing": (
            ParsingMetrics,
            [tuple((rng.random((4, n, 5, 10)) < 0.35).astype(int)) for n in sizes],
        ),
        "quality": (QualityMetrics, [(rng.random(n + 2), rng.random(n + 2)) for n in sizes]),
        "music_avqa": (
            AVQAAccuracy,
            [(rng.integers(0, 2, n), rng.integers(0, 2, n), KINDS[:n]) for n in sizes],
        ),
        "caption": (lambda: CaptionMetrics(tokenizer="simple", meteor=False), captions),
    }


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    scores = {}
    for name, (make, batches) in _cases().items():
        metric = make()
        for batch in batches[:1] if rank == 0 else batches[1:]:
            metric.update(*batch)
        scores[name] = metric.compute()
    with open(f"{out}.{rank}", "wb") as f:
        pickle.dump(scores, f)
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_score_as_one_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank, args=(port, str(tmp_path / "scores")), nprocs=2)
    for rank in (0, 1):
        with open(tmp_path / f"scores.{rank}", "rb") as f:
            got = pickle.load(f)
        for name, (make, batches) in _cases().items():
            metric = make()
            for batch in batches:
                metric.update(*batch)
            assert got[name] == pytest.approx(metric.compute()), (rank, name)
