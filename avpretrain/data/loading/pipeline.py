"""The webdataset pipeline from shard URLs to dict batches, as an explicit list of stages.

Stages (module-level functions or small picklable objects, so DataLoader workers work with
``fork`` and ``spawn`` alike)::

    shards           wds.ResampledShards (resampled: endless draws with replacement, seeded per
                     rank and worker) or EpochShardList (one pass, order seeded per epoch)
    split_by_rank    this rank's shards (one-pass mode only; resampled draws already differ)
    split_by_worker  this DataLoader worker's shards
    read_tar_samples tar members grouped by key (tar_stream's reader; see urls.open_url)
    select_members   choose the frame(s) to use, drop every other member (keeps buffers small)
    shuffle_samples  sample shuffle buffer (training)
    decode_samples   JSON, JPEG, FLAC or PCM, resample, augment, fbank or fixed-length waveform,
                     labels (or JPEG bytes and crops, with frames_on_device)
    batched          collate_samples -> dict batch

A batch: ``key`` list[str]; ``video`` [B, 3, H, W] (or [B, 3, F, H, W] with several frames per
clip); ``audio`` [B, 1, 128, T] or, in accelerator mode, ``waveform`` [B, samples] with
``waveform_len`` [B] (see :class:`samples.WaveformFeatures`); with ``num_classes``, ``label``
[B] long (first label, -1 if none) and ``labels`` [B, C] float multi-hot; optionally ``meta``
list[dict].

Unreadable data never stops a run by itself: every read or decode error goes to a
:class:`SkipCounter`, which logs the shard, key and problem on logger ``avpretrain.data`` (each
of the first errors on its own line, then one summary line at most every few seconds) and counts
it. Data that yields nothing does stop it, with an error instead of an endless loop:
``max_empty_shards`` shards in a row without a sample, or ``_MAX_CONSECUTIVE_FAILURES`` samples
in a row that fail to decode.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any

import numpy as np
import torch
import webdataset as wds
from webdataset.tariterators import group_by_keys

from avpretrain.data.audio_codec import AUDIO_EXTS
from avpretrain.data.loading.samples import (
    SampleOptions,
    choose_frames,
    collate_samples,
    decode_sample,
)
from avpretrain.data.loading.tar_stream import expand_tar_streams
from avpretrain.data.loading.urls import open_url
from avpretrain.data.schema import JSON_EXT, frame_exts

logger = logging.getLogger("avpretrain.data")

# Purposes mixed into per-worker seeds, so the streams of one worker are independent.
_SHARDS, _SELECT, _SHUFFLE, _DECODE = range(4)
# A worker whose samples all fail is misconfigured, not unlucky: stop instead of looping.
_MAX_CONSECUTIVE_FAILURES = 100
# Skips logged one line each per process; after that, one summary line per interval.
_LOUD_SKIPS, _SKIP_LOG_INTERVAL_S = 20, 10.0


def _worker() -> tuple[int, int]:
    """(worker id, number of workers) of the current DataLoader process; (0, 1) in the main one."""
    info = torch.utils.data.get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


def _mix(*parts: int) -> int:
    """A well-mixed 32-bit seed from integers (any sign)."""
    return int(np.random.SeedSequence([p % 2**63 for p in parts]).generate_state(1)[0])


@dataclass
class StreamSeed:
    """Seeds of one rank's data stream.

    The datamodule sets ``epoch`` and ``start_batch`` before each pass; workers are started
    afresh for every pass (never persistent), so each pass sees the values of its start.

    Args:
        seed: base seed of the run.
        epoch: pass number.
        start_batch: batches of this epoch consumed before a resume (0 normally), so a resumed
            stream draws differently from the one that was interrupted.
        rank: this process's rank.
        world_size: number of ranks.
    """

    seed: int = 0
    epoch: int = 0
    start_batch: int = 0
    rank: int = 0
    world_size: int = 1

    def shared(self) -> int:
        """Same on every rank and worker: the shard order of a one-pass epoch."""
        return _mix(self.seed, self.epoch)

    def local(self, purpose: int = _SHARDS) -> int:
        """Different for every rank, worker, epoch, resume point and purpose."""
        return _mix(self.seed, self.epoch, self.start_batch, self.rank, _worker()[0], purpose)


class SkipCounter:
    """Counts read and decode errors per DataLoader worker; the main process reads the sum.

    Counts live in a shared-memory tensor (one slot per worker), so they are visible while
    workers run, whether they were forked or spawned. Also a webdataset error handler.

    Args:
        slots: counter slots; worker ``i`` uses slot ``i % slots``.
    """

    def __init__(self, slots: int = 64) -> None:
        self.counts = torch.zeros(slots, dtype=torch.int64).share_memory_()
        self.shard = "?"  # the shard being read in this process, for log lines
        self.last_error = ""  # this process's latest error, for the no-data error
        self._logged, self._quiet, self._quiet_since = 0, 0, 0.0

    def __call__(self, exn: BaseException) -> bool:
        """Webdataset handler for shard-level errors (open, truncated tar): log, count, go on."""
        message = exn.args[0] if exn.args else exn
        self._log(f"unreadable data of shard {self.shard}: {type(exn).__name__}: {message}")
        return True

    def sample_error(self, key: str | None, url: str | None, exn: BaseException) -> None:
        """Log and count one sample that failed to decode."""
        self._log(f"sample {key} of shard {url}: {type(exn).__name__}: {exn}")

    def _log(self, what: str) -> None:
        """Count one error; log it alone while few, else fold it into a periodic summary line."""
        self.counts[_worker()[0] % len(self.counts)] += 1
        self.last_error = what
        if self._logged < _LOUD_SKIPS:
            self._logged += 1
            logger.warning("skipped %s", what)
            if self._logged == _LOUD_SKIPS:
                logger.warning(
                    "further skips in this process: one summary line per %gs", _SKIP_LOG_INTERVAL_S
                )
                self._quiet_since = time.monotonic()
            return
        self._quiet += 1
        now = time.monotonic()
        if now - self._quiet_since >= _SKIP_LOG_INTERVAL_S:
            logger.warning(
                "skipped %d more in the last %.0fs (latest: %s)",
                self._quiet,
                now - self._quiet_since,
                what,
            )
            self._quiet, self._quiet_since = 0, now

    @property
    def total(self) -> int:
        """Errors counted so far over all workers of this process."""
        return int(self.counts.sum())


class EpochShardList(wds.SimpleShardList):
    """``SimpleShardList`` whose order is reshuffled every epoch, identically on every rank.

    Args:
        urls: shard URLs.
        stream: seeds (``None`` keeps the given order, for evaluation).
    """

    def __init__(self, urls: list[str], stream: StreamSeed | None = None) -> None:
        super().__init__(urls)
        self.stream = stream

    def __iter__(self) -> Iterator[dict[str, str]]:
        for i in shard_order(len(self.urls), self.stream):
            yield {"url": self.urls[i]}


def shard_order(num_shards: int, stream: StreamSeed | None) -> list[int]:
    """Shard indices in the order of one pass (shared by all ranks, so splits are disjoint)."""
    order = list(range(num_shards))
    if stream is not None:
        random.Random(stream.shared()).shuffle(order)
    return order


def split_by_rank(src: Iterable[Any], rank: int, world_size: int) -> Iterator[Any]:
    """Every ``world_size``-th item from ``rank`` on.

    The rank is explicit, not read from torch.distributed, which DataLoader workers do not inherit.
    """
    return islice(src, rank, None, world_size)


def split_samples(src: Iterable[Any], rank: int, world_size: int) -> Iterator[Any]:
    """Every rank and worker reads all shards and keeps its share of the samples.

    For evaluation sets with fewer shards than ranks x workers: more reading, but every sample
    is seen exactly once overall.
    """
    worker, workers = _worker()
    return islice(src, rank * workers + worker, None, world_size * workers)


@dataclass
class EmptyShardRun:
    """Shards opened since the last sample came out; too many in a row is an error.

    Args:
        limit: shards in a row allowed to yield no sample (all unreadable or empty).
        counter: the error counter, whose total and latest error go into the message.
    """

    limit: int
    counter: SkipCounter
    run: int = 0

    def opened(self, url: str) -> None:
        """Count one more shard opened; raise once ``limit`` shards in a row gave nothing."""
        if self.run >= self.limit:
            raise RuntimeError(
                f"no sample from the last {self.run} shards read (the latest: {url}); "
                f"{self.counter.total} read/decode errors in this process, the latest: "
                f"{self.counter.last_error or 'none (the shards are empty)'}. "
                f"The data is unreadable or empty; check the shards and their index.json "
                f"(or raise the datamodule's max_empty_shards if this many empty shards are expected)"
            )
        self.run += 1


def open_shards(
    src: Iterable[dict[str, Any]], handler: SkipCounter, empty: EmptyShardRun | None = None
) -> Iterator[dict[str, Any]]:
    """Open each shard URL as a stream (closed once the next shard is asked for)."""
    for shard in src:
        url = handler.shard = shard["url"]
        if empty is not None:
            empty.opened(url)
        try:
            stream = open_url(url)
        except Exception as exn:  # noqa: BLE001 - any opener failure skips the shard
            handler(OSError(f"cannot open: {exn}"))
            continue
        yield {**shard, "stream": stream}
        try:
            stream.close()
        except Exception as exn:  # noqa: BLE001 - e.g. a pipe: command's exit status
            handler(OSError(f"error on closing: {exn}"))


def read_tar_samples(
    src: Iterable[dict[str, Any]], handler: SkipCounter, max_empty_shards: int = 0
) -> Iterator[dict]:
    """Shard URLs -> raw samples (``__key__``, ``__url__`` and bytes by extension).

    Raises:
        RuntimeError: ``max_empty_shards`` (> 0) shards in a row yielded no sample.
    """
    empty = EmptyShardRun(max_empty_shards, handler) if max_empty_shards > 0 else None
    files = expand_tar_streams(open_shards(src, handler, empty), handler)
    for sample in group_by_keys(files, handler=handler):
        if empty is not None:
            empty.run = 0
        yield sample


def select_members(
    src: Iterable[dict[str, Any]], opts: SampleOptions, stream: StreamSeed
) -> Iterator[dict[str, Any]]:
    """Keep JSON, audio and only the chosen frame(s), as ``__frames__`` in temporal order.

    Runs before the shuffle buffer, which then holds one JPEG per clip instead of ten.
    """
    generator = torch.Generator().manual_seed(stream.local(_SELECT))
    for sample in src:
        frames = frame_exts(sample)
        names = ("__key__", "__url__", JSON_EXT, *AUDIO_EXTS, *opts.extra_members)
        kept = {k: sample[k] for k in names if k in sample}
        if frames:
            idx = choose_frames(
                len(frames), opts.num_frames_per_clip, opts.train, generator, opts.frame_sampling
            )
            kept["__frames__"] = [sample[frames[i]] for i in idx]
            kept["__frame_indices__"] = idx
        yield kept


def shuffle_samples(src: Iterable[Any], bufsize: int, stream: StreamSeed) -> Iterator[Any]:
    """Webdataset's shuffle buffer with a per-rank, per-worker, per-epoch seed."""
    rng = random.Random(stream.local(_SHUFFLE))
    return wds.shuffle(bufsize, initial=min(bufsize, 100), rng=rng)(iter(src))


def decode_samples(
    src: Iterable[dict[str, Any]], opts: SampleOptions, stream: StreamSeed, counter: SkipCounter
) -> Iterator[dict[str, Any]]:
    """Decode every sample; a failing one is logged, counted and skipped."""
    generator = torch.Generator().manual_seed(stream.local(_DECODE))
    failures = 0
    for sample in src:
        try:
            out = decode_sample(sample, opts, generator)
        except Exception as exn:  # noqa: BLE001 - corrupt data of any kind skips the sample
            counter.sample_error(sample.get("__key__"), sample.get("__url__"), exn)
            failures += 1
            if failures >= _MAX_CONSECUTIVE_FAILURES:
                raise RuntimeError(
                    f"{failures} samples in a row failed to decode; last: {exn!r}"
                ) from exn
            continue
        failures = 0
        yield out


def build_pipeline(
    urls: list[str],
    opts: SampleOptions,
    batch_size: int,
    stream: StreamSeed,
    counter: SkipCounter,
    resampled: bool = False,
    shuffle_buffer: int = 0,
    split_shards: bool = True,
    max_empty_shards: int = 0,
) -> wds.DataPipeline:
    """Assemble the stages (module docstring) into one rank's dataset of batches.

    Args:
        urls: shard URLs (see :func:`urls.expand_urls`).
        opts: decode options; ``opts.train`` also drops incomplete last batches.
        batch_size: samples per batch, per rank.
        stream: seeds; ``stream.rank`` / ``world_size`` pick this rank's shards.
        counter: error handler and counter.
        resampled: draw shards with replacement forever (use ``with_epoch`` on the loader).
        shuffle_buffer: samples in the shuffle buffer (0: no shuffling).
        split_shards: split by shard; if False every worker reads all shards and keeps its
            share of samples (:func:`split_samples`).
        max_empty_shards: stop with an error once this many shards in a row yielded no sample
            (0: never; a resampled stream over unreadable shards would otherwise never end).
    """
    read = partial(read_tar_samples, handler=counter, max_empty_shards=max_empty_shards)
    if resampled:
        stages: list[Any] = [
            wds.ResampledShards(urls, worker_seed=stream.local, deterministic=True),
            read,
        ]
    else:
        stages = [EpochShardList(urls, stream if opts.train else None)]
        by_rank: dict[str, Any] = {"rank": stream.rank, "world_size": stream.world_size}
        if split_shards:
            stages += [partial(split_by_rank, **by_rank), wds.split_by_worker]
            stages.append(read)
        else:
            stages.append(read)
            stages.append(partial(split_samples, **by_rank))
    stages.append(partial(select_members, opts=opts, stream=stream))
    if shuffle_buffer > 0:
        stages.append(partial(shuffle_samples, bufsize=shuffle_buffer, stream=stream))
    stages.append(partial(decode_samples, opts=opts, stream=stream, counter=counter))
    stages.append(wds.batched(batch_size, collation_fn=collate_samples, partial=not opts.train))
    return wds.DataPipeline(*stages)
