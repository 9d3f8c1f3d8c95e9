"""Samples/s, model FLOPs utilisation (MFU) and the data-wait share of each training step.

FLOPs per sample are counted once with ``torch.utils.flop_counter`` (through Lightning's
``measure_flops``) on a meta-device copy of the model, forward and backward, so nothing runs.
Peak FLOP/s is a constructor argument, never looked up: device tables have had wrong entries,
and MFU is only meaningful against the number the user states for their hardware.
"""

from __future__ import annotations

import copy
import time
from typing import Any, cast

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.throughput import measure_flops


def count_train_flops_per_sample(model: torch.nn.Module, batch: dict[str, Any]) -> int:
    """FLOPs of one training step (forward + backward) per sample, counted on the meta device.

    Args:
        model: a module called as ``model(audio, video)`` returning an object with ``.loss``.
        batch: a real batch; only its shapes are used (``audio [B, 1, F, T]``, ``video [B, ...]``).
    """
    meta_model = copy.deepcopy(model).to("meta")
    meta_model.gather_negatives = False  # type: ignore[assignment]  # collectives cannot run on meta tensors
    audio = torch.empty((1, *batch["audio"].shape[1:]), device="meta")
    video = torch.empty((1, *batch["video"].shape[1:]), device="meta")
    return measure_flops(meta_model, lambda: meta_model(audio, video).loss, lambda loss: loss)


class ThroughputMonitor(pl.Callback):
    """Logs ``perf/samples_per_s`` (all ranks), ``perf/mfu`` and ``perf/data_wait_share``.

    Args:
        peak_tflops: the accelerator's dense peak in TFLOP/s for the training precision (H100/H200
            bf16: 989, A100 bf16: 312). ``None`` logs no MFU (e.g. on a CPU).
        window: steps averaged per logged value.
    """

    def __init__(self, peak_tflops: float | None = None, window: int = 10) -> None:
        self.peak_tflops = peak_tflops
        self.window = window
        self.flops_per_sample: int | None = None
        self._last_end: float | None = None
        self._reset()

    def _reset(self) -> None:
        self._wait = 0.0
        self._total = 0.0
        self._samples = 0
        self._steps = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the clock of the first step's data wait."""
        self._last_end = time.perf_counter()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Add the wait since the last step to the data wait; count FLOPs on the first batch."""
        now = time.perf_counter()
        if self._last_end is None:  # resumed mid-epoch: no epoch start was seen
            self._last_end = now
        self._wait += now - self._last_end
        if self.flops_per_sample is None:
            model = cast(torch.nn.Module, pl_module.model)  # the pretraining module's model
            self.flops_per_sample = count_train_flops_per_sample(model, batch)
            pl_module.print(f"training FLOPs per sample: {self.flops_per_sample / 1e9:.2f} G")

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Count the batch's samples and time; log every ``window`` steps."""
        assert self._last_end is not None  # set by on_train_batch_start
        self._samples += batch["audio"].shape[0]
        self._steps += 1
        if self._steps >= self.window:
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize(pl_module.device)
            now = time.perf_counter()
            self._total += now - self._last_end
            self._log(trainer, pl_module)
            self._reset()
            self._last_end = time.perf_counter()
            return
        now = time.perf_counter()
        self._total += now - self._last_end
        self._last_end = now

    def _log(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        samples_per_s = self._samples * trainer.world_size / max(self._total, 1e-9)
        metrics = {
            "perf/samples_per_s": samples_per_s,
            "perf/data_wait_share": self._wait / max(self._total, 1e-9),
        }
        if self.peak_tflops and self.flops_per_sample:
            peak = self.peak_tflops * 1e12 * trainer.world_size
            metrics["perf/mfu"] = self.flops_per_sample * samples_per_s / peak
        pl_module.log_dict(metrics, on_step=True, on_epoch=False, rank_zero_only=True)
