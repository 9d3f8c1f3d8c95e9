"""One rank's loader over a shard pipeline: epochs of a fixed, rank-independent length.

:class:`EpochLoader` wraps webdataset's ``WebLoader`` and owns what the pipeline cannot know on
its own: which epoch it is (seeds), how many batches an epoch has (``with_epoch``), how far a
resumed run had got, and a summary of skipped samples at the end of each epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch
import webdataset as wds

from avpretrain.data.loading.pipeline import SkipCounter, StreamSeed, shard_order

logger = logging.getLogger("avpretrain.data")


def rank_batches(
    samples: list[int],
    order: list[int],
    world_size: int,
    num_workers: int,
    batch_size: int,
    partial_batches: bool,
) -> list[int]:
    """Batches each rank gets from one pass over shards split by rank, then by worker.

    Each DataLoader worker batches its own samples, so incomplete batches are per worker.

    Args:
        samples: sample count of each shard.
        order: shard indices in the order of the pass (:func:`pipeline.shard_order`).
        world_size: number of ranks.
        num_workers: DataLoader workers per rank (0 counts as one).
        batch_size: samples per batch.
        partial_batches: whether incomplete batches are kept.

    Returns:
        [world_size] batch counts.
    """
    workers = max(1, num_workers)
    counts = []
    for rank in range(world_size):
        mine = order[rank::world_size]
        total = 0
        for worker in range(workers):
            n = sum(samples[i] for i in mine[worker::workers])
            total += -(-n // batch_size) if partial_batches else n // batch_size
        counts.append(total)
    return counts


class EpochLoader:
    """Iterable of one epoch of batches per ``iter()``, with a length and a resumable position.

    Epoch length: ``fixed_batches`` if given (resampled mode); else, from the shards' sample
    counts, the smallest per-rank count when training (so every rank runs the same number of
    steps and DDP never waits on a rank that ran out) or this rank's own count when evaluating;
    unknown (no ``len``) without counts. A training epoch that loses samples to read errors is
    topped up by starting the pass again, so its length still holds.

    Workers are started afresh every epoch (``persistent_workers=False``): that is how the
    epoch's seeds reach them.

    Args:
        dataset: the rank's pipeline (:func:`pipeline.build_pipeline`).
        stream: the seeds the pipeline reads; ``epoch``/``start_batch`` are set here.
        counter: the pipeline's error counter.
        num_workers: DataLoader worker processes.
        batch_size: samples per batch.
        train: training (shuffled shard order, dropped incomplete batches) or evaluation.
        fixed_batches: batches per epoch in resampled mode.
        shard_samples: sample count per shard for one-pass epochs (None: unknown).
        name: for log lines (``train``, ``val``, ...).
        timeout_s: seconds to wait for a batch from the workers before giving up with an error
            (0: forever; no effect without workers).

    Raises (while iterating):
        RuntimeError: a training epoch yielded no batch at all (every sample unreadable); the
            next epoch would do the same, so training would loop through empty epochs forever.
    """

    def __init__(
        self,
        dataset: wds.DataPipeline,
        stream: StreamSeed,
        counter: SkipCounter,
        num_workers: int,
        batch_size: int,
        train: bool,
        fixed_batches: int | None = None,
        shard_samples: list[int] | None = None,
        name: str = "train",
        timeout_s: float = 0.0,
    ) -> None:
        self.loader = wds.WebLoader(
            dataset,
            batch_size=None,
            num_workers=num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=False,
            timeout=timeout_s if num_workers > 0 else 0,
        )
        self.stream, self.counter = stream, counter
        self.num_workers, self.batch_size, self.train = num_workers, batch_size, train
        self.fixed_batches, self.shard_samples, self.name = fixed_batches, shard_samples, name
        self.epoch, self.batches = 0, 0  # position within the epoch being read
        self._next = (0, 0)  # (epoch, batches already consumed) of the next iter()
        self._in_epoch = False
        self._total: int | None = None

    def epoch_batches(self, stream: StreamSeed) -> int | None:
        """Batches of the epoch ``stream`` describes (``None``: unknown)."""
        if self.fixed_batches is not None:
            return self.fixed_batches
        if self.shard_samples is None:
            return None
        order = shard_order(len(self.shard_samples), stream if self.train else None)
        counts = rank_batches(
            self.shard_samples,
            order,
            stream.world_size,
            self.num_workers,
            self.batch_size,
            partial_batches=not self.train,
        )
        return min(counts) if self.train else counts[stream.rank]

    def __len__(self) -> int:
        epoch, start = self._next
        total = self.epoch_batches(replace(self.stream, epoch=epoch, start_batch=start))
        if total is None:
            raise TypeError(f"{self.name} loader: epoch length unknown (no shard sample counts)")
        return total

    def __iter__(self) -> Iterator[dict[str, Any]]:
        epoch, start = self._next
        self._next = (epoch + 1, 0)
        self.epoch, self.batches, self._in_epoch = epoch, start, True
        self.stream.epoch, self.stream.start_batch = epoch, start
        self._total = self.epoch_batches(self.stream)
        skipped = self.counter.total
        try:
            if self._total is not None:
                if self._total - start <= 0:
                    self._in_epoch = False
                    return
                if self.train:
                    self.loader.with_epoch(self._total - start)
            for batch in self.loader:
                self.batches += 1
                yield batch
            self._in_epoch = False
            if self.train and self.batches == start:
                raise RuntimeError(
                    f"{self.name} epoch {self.epoch}: no batch at all "
                    f"({self.counter.total - skipped} samples or shard parts skipped as "
                    f"unreadable this epoch, see the log): the data yields nothing to train on"
                )
        finally:
            self._summary(self.counter.total - skipped)

    def _summary(self, skipped: int) -> None:
        level = logging.WARNING if skipped else logging.INFO
        logger.log(
            level,
            "%s epoch %d, rank %d: %d batches, %d samples or shard parts skipped (%d in total)",
            self.name,
            self.epoch,
            self.stream.rank,
            self.batches,
            skipped,
            self.counter.total,
        )

    def state_dict(self) -> dict[str, int]:
        """Where the stream stands: the epoch and the batches of it handed out so far.

        Batches are counted when handed to the training loop's fetcher, which reads one ahead,
        so a mid-epoch state may be one batch past the last step taken.
        """
        epoch, batches = self._next
        if self._in_epoch and (self._total is None or self.batches < self._total):
            epoch, batches = self.epoch, self.batches
        return {"epoch": epoch, "batches": batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a :meth:`state_dict`: the next ``iter()`` resumes that epoch."""
        self._next = (int(state["epoch"]), int(state["batches"]))
        self._in_epoch = False
