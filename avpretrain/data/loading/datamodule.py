"""AVDataModule: audio-visual shards to dict batches, on one GPU or many.

Multi-GPU in one paragraph: each rank builds its own pipeline. In one-pass mode
(``resampled=False``) shards are split by rank, then by worker, so there must be at least
``world_size x num_workers`` of them (better 4-10x), and every rank runs the smallest per-rank
batch count (computed from ``index.json`` sample counts). In resampled mode each rank and worker
draws shards with replacement from its own seed, and an epoch is ``epoch_samples // (world_size
x batch_size)`` batches on every rank, however uneven the shards: the setting for large runs.

Resuming (``state_dict`` / ``load_state_dict``, also used by Lightning as a stateful loader):
restored are the epoch and the number of its batches already consumed, so the epoch keeps its
length and its seeds; the resumed stream is seeded with the resume point, so it draws new shards
rather than replaying the interrupted ones. Not restored: the exact samples (shuffle buffers,
open shards); in one-pass mode the interrupted epoch starts its shard order again and stops
after the remaining batches, so some samples of that epoch repeat and others are missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from avpretrain.arguments import check_choice
from avpretrain.data.loading.audio import FbankConfig, normalize
from avpretrain.data.loading.augment import check_augment_args, mixup, spec_augment
from avpretrain.data.loading.device_decode import JPEG_KEY, decode_frames_in_batch
from avpretrain.data.loading.loader import EpochLoader
from avpretrain.data.loading.pipeline import SkipCounter, StreamSeed, build_pipeline
from avpretrain.data.loading.samples import FrameSampling, SampleOptions, WaveformFeatures
from avpretrain.data.loading.urls import Shard, expand_urls, total_samples

logger = logging.getLogger("avpretrain.data")

_SPLITS = ("train", "val", "test")


def _batch_device(batch: dict[str, Any]) -> torch.device:
    """The device of the first tensor in a batch (the CPU if it holds none)."""
    tensors = (v for v in batch.values() if isinstance(v, Tensor))
    return next(tensors, torch.empty(0)).device


class AVDataModule(L.LightningDataModule):
    """Batches ``{key, video, audio, [label, labels], [meta]}`` from webdataset shards.

    Shapes: ``video`` [B, 3, frame_size, frame_size] (or [B, 3, F, S, S] with
    ``num_frames_per_clip`` F > 1), ``audio`` [B, 1, num_mel_bins, T], ``label`` [B] long,
    ``labels`` [B, num_classes] float. In accelerator mode the workers send ``waveform``
    [B, samples] and ``waveform_len`` [B], and :meth:`on_after_batch_transfer` replaces them by
    ``audio`` computed on the device. Training batches then get mixup and SpecAugment if set.

    Args:
        train_urls: training shards: a path, folder, ``index.json``, brace pattern or
            ``s3://``/``gs://``/``pipe:`` URL, or a list of them (see ``avpretrain.data.loading.urls``).
        val_urls: validation shards, read once in a fixed order (optional).
        test_urls: test shards, read like validation (optional).
        batch_size: samples per batch on each rank.
        num_workers: DataLoader worker processes per rank.
        shuffle_buffer: samples held for shuffling in each worker (training; 0 disables).
        resampled: draw training shards with replacement (endless stream cut into epochs of
            ``epoch_samples``); the robust choice for many GPUs or uneven shards.
        epoch_samples: samples per epoch over all ranks in resampled mode; each rank runs
            ``epoch_samples // (world_size * batch_size)`` batches. Defaults to the index total.
        fbank: audio features (``FbankConfig.audioset()`` when None; ``FbankConfig.paper()``
            for the ACAV-1M paper's 8 kHz 128 x 128 input).
        frame_size: side of the square frames.
        num_frames_per_clip: 1 for one frame per clip (random in training, middle otherwise);
            more for clips ``[3, F, H, W]`` (one frame per equal segment).
        frame_sampling: with several frames per clip, ``uniform`` (one per equal segment, the
            pretraining sampler) or ``dense`` (consecutive stored frames, random start in
            training, centred otherwise: what quality assessment needs to see stutter).
        audio_on_device: accelerator mode: workers only decode audio and the fbank runs on the
            device after transfer (faster when loader CPUs are scarce).
        frames_on_device: workers pass the chosen frames' JPEG bytes and crops, and
            :meth:`on_after_batch_transfer` decodes (nvJPEG on CUDA), crops, resizes, flips and
            normalises the batch on the device. With ``audio_on_device`` and PCM shards
            (``avpretrain reencode --codec pcm``) a worker only reads the tar and slices bytes.
        time_roll: pretraining augmentation: roll the waveform by a random offset.
        gain_db: pretraining augmentation: random gain within +-gain_db decibels (0: off).
        spec_freq_mask: fine-tuning SpecAugment frequency band bound in bins (0: off).
        spec_time_mask: fine-tuning SpecAugment time band bound in frames (0: off).
        mixup_alpha: fine-tuning mixup Beta(alpha, alpha) on training batches (0: off; needs
            ``num_classes``). ``labels`` become soft targets; ``label`` stays the unmixed one.
        num_classes: emit ``label`` (first JSON label, -1 if none) and multi-hot ``labels``.
        keep_meta: also return each clip's JSON record as ``meta`` (list of dicts).
        frame_augment: random crop and flip of training frames; off for tasks with spatial
            targets (localization, segmentation), whose masks must stay aligned with the frame.
        targets: a task's target builder, ``f(sample, meta, opts) -> dict`` (a module-level
            function, given in YAML by its import path), run in the workers after decoding; see
            ``avpretrain.data.loading.samples.SampleOptions``.
        extra_members: shard members the targets need beyond frames, audio and JSON (e.g.
            ``gt.npz``).
        seed: base seed of shard order, shuffling, frame choice and augmentation.
        max_empty_shards: stop with an error once a worker has read this many shards in a row
            without getting a sample (all unreadable or empty): a stream over broken data ends
            instead of looping forever. 0 disables the check.
        batch_timeout_s: stop with an error when the workers deliver no batch for this many
            seconds (a hung network read); 0 disables. Applies with ``num_workers`` > 0.
    """

    def __init__(
        self,
        train_urls: str | list[str] | None = None,
        val_urls: str | list[str] | None = None,
        test_urls: str | list[str] | None = None,
        batch_size: int = 32,
        num_workers: int = 4,
        shuffle_buffer: int = 1000,
        resampled: bool = False,
        epoch_samples: int | None = None,
        fbank: FbankConfig | None = None,
        frame_size: int = 224,
        num_frames_per_clip: int = 1,
        frame_sampling: FrameSampling = "uniform",
        audio_on_device: bool = False,
        frames_on_device: bool = False,
        time_roll: bool = False,
        gain_db: float = 0.0,
        spec_freq_mask: int = 0,
        spec_time_mask: int = 0,
        mixup_alpha: float = 0.0,
        num_classes: int | None = None,
        keep_meta: bool = False,
        frame_augment: bool = True,
        targets: Callable[..., dict[str, Any]] | None = None,
        extra_members: list[str] | None = None,
        seed: int = 0,
        max_empty_shards: int = 100,
        batch_timeout_s: float = 1800.0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or num_workers < 0 or num_frames_per_clip < 1:
            raise ValueError(
                f"need batch_size >= 1, num_workers >= 0, num_frames_per_clip >= 1; got "
                f"{batch_size}, {num_workers}, {num_frames_per_clip}"
            )
        check_choice("frame_sampling", frame_sampling, FrameSampling)
        if mixup_alpha > 0 and num_classes is None:
            raise ValueError("mixup_alpha > 0 mixes labels: set num_classes")
        if (
            frame_size < 1
            or shuffle_buffer < 0
            or (epoch_samples is not None and epoch_samples < 1)
        ):
            raise ValueError(
                f"need frame_size >= 1, shuffle_buffer >= 0 (0: off) and epoch_samples >= 1 (or "
                f"unset); got {frame_size}, {shuffle_buffer}, {epoch_samples}"
            )
        if max_empty_shards < 0 or batch_timeout_s < 0:
            raise ValueError(
                f"max_empty_shards and batch_timeout_s must be >= 0 (0: off), got "
                f"{max_empty_shards}, {batch_timeout_s}"
            )
        self.urls = {"train": train_urls, "val": val_urls, "test": test_urls}
        self.batch_size, self.num_workers = batch_size, num_workers
        self.shuffle_buffer, self.resampled, self.epoch_samples = (
            shuffle_buffer,
            resampled,
            epoch_samples,
        )
        self.fbank = fbank or FbankConfig.audioset()
        check_augment_args(
            self.fbank.num_mel_bins,
            self.fbank.output_frames,
            gain_db,
            spec_freq_mask,
            spec_time_mask,
            mixup_alpha,
        )
        self.max_empty_shards, self.batch_timeout_s = max_empty_shards, batch_timeout_s
        self.frame_size, self.num_frames_per_clip = frame_size, num_frames_per_clip
        self.frame_sampling = frame_sampling
        self.audio_on_device, self.frames_on_device = audio_on_device, frames_on_device
        self.time_roll, self.gain_db = time_roll, gain_db
        self.spec_freq_mask, self.spec_time_mask = spec_freq_mask, spec_time_mask
        self.mixup_alpha, self.num_classes = mixup_alpha, num_classes
        self.keep_meta, self.seed = keep_meta, seed
        self.frame_augment, self.targets = frame_augment, targets
        self.extra_members = tuple(extra_members or ())
        self.counters = {name: SkipCounter() for name in _SPLITS}
        self.loaders: dict[str, EpochLoader] = {}
        self._shards: dict[str, list[Shard]] = {}
        self._pending_state: dict[str, int] | None = None
        self._features = WaveformFeatures(self.fbank) if audio_on_device else None
        self._generator: torch.Generator | None = None

    # -- world and shards ---------------------------------------------------------------------

    def world(self) -> tuple[int, int]:
        """(rank, world_size): from the trainer, else torch.distributed, else (0, 1)."""
        if self.trainer is not None:
            return self.trainer.global_rank, self.trainer.world_size
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def shards(self, split: str) -> list[Shard]:
        """The expanded shards of ``split`` (``train``, ``val`` or ``test``), cached."""
        if split not in self._shards:
            urls = self.urls[split]
            if urls is None:
                raise ValueError(f"no {split}_urls given")
            shards = expand_urls(urls)
            filled = [s for s in shards if s.samples != 0]
            if not filled:
                raise ValueError(
                    f"{split}_urls {self.urls[split]!r}: its index lists {len(shards)} shard(s) "
                    f"and no sample: nothing to read (an ingest whose clips were all skipped? "
                    f"see the summary in its index.json)"
                )
            if len(filled) < len(shards):
                logger.info(
                    "%s: %d shard(s) listed with 0 samples are not read",
                    split,
                    len(shards) - len(filled),
                )
            self._shards[split] = filled
        return self._shards[split]

    def setup(self, stage: str | None = None) -> None:
        """Expand the shard lists the stage needs (errors for missing shards come early)."""
        for split in _SPLITS:
            if self.urls[split] is not None:
                self.shards(split)

    @property
    def skipped(self) -> dict[str, int]:
        """Samples or shard parts skipped for read/decode errors so far, per split, this rank."""
        return {name: counter.total for name, counter in self.counters.items()}

    # -- loaders ------------------------------------------------------------------------------

    def _options(self, train: bool) -> SampleOptions:
        return SampleOptions(
            train=train,
            fbank=self.fbank,
            frame_size=self.frame_size,
            num_frames_per_clip=self.num_frames_per_clip,
            frame_sampling=self.frame_sampling,
            audio_on_device=self.audio_on_device,
            frames_on_device=self.frames_on_device,
            time_roll=self.time_roll,
            gain_db=self.gain_db,
            num_classes=self.num_classes,
            keep_meta=self.keep_meta,
            frame_augment=self.frame_augment,
            targets=self.targets,
            extra_members=self.extra_members,
        )

    def _resampled_batches(self, shards: list[Shard], world: int) -> int:
        samples = self.epoch_samples or total_samples(shards)
        if samples is None:
            raise ValueError(
                "resampled mode needs epoch_samples: the training shards have no index.json "
                "sample counts to default it from"
            )
        batches = samples // (world * self.batch_size)
        if batches < 1:
            raise ValueError(
                f"epoch_samples {samples} is less than one batch per rank: world_size {world} x "
                f"batch_size {self.batch_size} = {world * self.batch_size}"
            )
        return batches

    def _check_enough_shards(self, shards: list[Shard], world: int) -> None:
        workers = max(1, self.num_workers)
        if len(shards) < world * workers:
            raise ValueError(
                f"train_urls has {len(shards)} shards, fewer than world_size {world} x "
                f"num_workers {workers} = {world * workers}: some workers would read nothing and "
                f"ranks would get unequal data. Use resampled=True (with epoch_samples), or "
                f"num_workers <= {max(1, len(shards) // world)}, or more, smaller shards."
            )

    def train_dataloader(self) -> EpochLoader:
        """Training batches: resampled epochs of fixed length, or one-pass epochs."""
        rank, world = self.world()
        shards = self.shards("train")
        counts = [s.samples for s in shards]
        stream = StreamSeed(self.seed, rank=rank, world_size=world)
        fixed = self._resampled_batches(shards, world) if self.resampled else None
        if not self.resampled:
            self._check_enough_shards(shards, world)
            if self.epoch_samples is not None:
                logger.warning("epoch_samples applies to resampled mode only; it is ignored")
            if world > 1 and None in counts:
                logger.warning(
                    "train shards have no sample counts (no index.json): ranks may run unequal "
                    "batch counts and DDP may hang; use resampled=True with epoch_samples"
                )
        dataset = build_pipeline(
            [s.url for s in shards],
            self._options(train=True),
            self.batch_size,
            stream,
            self.counters["train"],
            resampled=self.resampled,
            shuffle_buffer=self.shuffle_buffer,
            max_empty_shards=self.max_empty_shards,
        )
        loader = EpochLoader(
            dataset,
            stream,
            self.counters["train"],
            self.num_workers,
            self.batch_size,
            train=True,
            fixed_batches=fixed,
            shard_samples=None if None in counts else counts,  # type: ignore[arg-type]
            name="train",
            timeout_s=self.batch_timeout_s,
        )
        if self._pending_state is not None:
            loader.load_state_dict(self._pending_state)
        self.loaders["train"] = loader
        position = loader.state_dict()
        epoch, batches = position["epoch"], position["batches"]
        self._generator = torch.Generator().manual_seed(
            int(np.random.SeedSequence([self.seed, rank, epoch, batches]).generate_state(1)[0])
        )
        return loader

    def _eval_loader(self, split: str) -> EpochLoader:
        rank, world = self.world()
        shards = self.shards(split)
        counts = [s.samples for s in shards]
        # Too few shards to split by shard: every worker reads all, keeps its share of samples.
        split_shards = len(shards) >= world * max(1, self.num_workers)
        stream = StreamSeed(self.seed, rank=rank, world_size=world)
        dataset = build_pipeline(
            [s.url for s in shards],
            self._options(train=False),
            self.batch_size,
            stream,
            self.counters[split],
            split_shards=split_shards,
            max_empty_shards=self.max_empty_shards,
        )
        known = split_shards and None not in counts
        loader = EpochLoader(
            dataset,
            stream,
            self.counters[split],
            self.num_workers,
            self.batch_size,
            train=False,
            shard_samples=counts if known else None,  # type: ignore[arg-type]
            name=split,
            timeout_s=self.batch_timeout_s,
        )
        self.loaders[split] = loader
        return loader

    def val_dataloader(self) -> EpochLoader | list:
        """Validation batches in a fixed order, every sample once (empty without val_urls)."""
        return self._eval_loader("val") if self.urls["val"] is not None else []

    def test_dataloader(self) -> EpochLoader | list:
        """Test batches, as validation (empty without test_urls)."""
        return self._eval_loader("test") if self.urls["test"] is not None else []

    # -- on the device ------------------------------------------------------------------------

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict:
        """Device-side steps: frames and fbank in accelerator mode, then training augmentations."""
        training = self.trainer is not None and self.trainer.training
        device = self.trainer.strategy.root_device if self.trainer is not None else None
        return self.device_transform(batch, train=training, device=device)

    def device_transform(
        self, batch: dict[str, Any], train: bool = False, device: torch.device | None = None
    ) -> dict[str, Any]:
        """Accelerator-mode frames and features, then (training only) mixup and SpecAugment.

        Args:
            batch: a loader batch on its device.
            train: apply the fine-tuning augmentations.
            device: where JPEG bytes are decoded (default: the device of the batch's tensors).

        Returns:
            The batch with ``video`` (``frames_jpeg``/``frame_crop`` consumed) and ``audio``
            [B, 1, F, T] (``waveform``/``waveform_len`` consumed).
        """
        if JPEG_KEY in batch:
            batch, _ = decode_frames_in_batch(
                batch, self.frame_size, device or _batch_device(batch)
            )
        if "waveform" in batch:
            if self._features is None:
                self._features = WaveformFeatures(self.fbank)
            features = self._features.to(batch["waveform"].device)
            batch["audio"] = features(batch.pop("waveform"), batch.pop("waveform_len"))
        if not train:
            return batch
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.seed)
        if self.mixup_alpha > 0:
            audio, video, labels, _ = mixup(
                batch["audio"], batch["video"], batch["labels"], self.mixup_alpha, self._generator
            )
            batch.update(audio=audio, video=video, labels=labels)
        if self.spec_freq_mask > 0 or self.spec_time_mask > 0:
            batch["audio"] = spec_augment(
                batch["audio"],
                self.spec_freq_mask,
                self.spec_time_mask,
                mask_value=self._fbank_zero(),
                generator=self._generator,
            )
        return batch

    def _fbank_zero(self) -> float:
        """Normalised value of a zero log-mel energy: what padding and masks hold."""
        value: Tensor = normalize(torch.tensor(0.0), self.fbank)
        return float(value)

    # -- resuming -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Position of the training stream (``epoch``, ``batches``) plus the seed used."""
        loader = self.loaders.get("train")
        position = loader.state_dict() if loader is not None else self._pending_state
        return {"seed": self.seed, **(position or {"epoch": 0, "batches": 0})}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the training stream at the saved epoch and batch (see the module docstring)."""
        if state_dict.get("seed", self.seed) != self.seed:
            logger.warning(
                "resuming with seed %s; the checkpoint's data stream used seed %s",
                self.seed,
                state_dict["seed"],
            )
        self._pending_state = {k: int(state_dict[k]) for k in ("epoch", "batches")}
        if "train" in self.loaders:
            self.loaders["train"].load_state_dict(self._pending_state)
