"""The workers' audio: a clip's int16 samples to the CPU fbank's input or a waveform.

The waveform has a fixed length; ``audio_on_device`` computes the features from it on the device.

Profiled with PCM shards and both ``*_on_device`` options, the worker's own work per clip was
mostly copies of the waveform (float conversion, roll, padding, then the batch stack), each into
fresh memory. So at the feature rate and without gain, a clip stays int16 and is described by a
:class:`PCMWindow` (its samples, a roll and the fixed length); :func:`stack_waveforms` writes the
windows straight into the batch, one copy per clip, and the device scales the int16 counts (half
the bytes of float32 to move). Resampling or gain take the float32 path, as the CPU fbank does.
The random draws are those of :func:`augment.random_time_roll` then :func:`augment.random_gain`,
so every path sees the same augmentation for the same seed.
"""

from __future__ import annotations

from typing import NamedTuple, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avpretrain.data.audio_codec import pcm16_to_float
from avpretrain.data.loading.audio import FbankConfig, resample
from avpretrain.data.loading.augment import random_gain, random_time_roll


def waveform_samples(cfg: FbankConfig) -> int:
    """Waveform length that gives exactly ``cfg.target_frames`` Kaldi frames."""
    return (cfg.target_frames - 1) * cfg.window_shift + cfg.window_size


def fit_waveform(waveform: Tensor, cfg: FbankConfig) -> tuple[Tensor, int]:
    """Cut or zero-pad [samples] to :func:`waveform_samples`; also return the valid length."""
    n = waveform_samples(cfg)
    valid = min(waveform.shape[0], n)
    return F.pad(waveform[:n], (0, n - valid)), valid


def _check_length(num_samples: int, cfg: FbankConfig) -> None:
    if num_samples < cfg.window_size:
        raise ValueError(f"audio of {num_samples} samples is shorter than one fbank window")


def float_waveform(
    samples: np.ndarray,
    rate: int,
    cfg: FbankConfig,
    time_roll: bool = False,
    gain_db: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """int16 [samples] at ``rate`` -> float32 [samples'] at ``cfg.sample_rate``, augmented.

    Args:
        samples: [samples] int16 mono.
        rate: their rate, Hz.
        cfg: feature settings (the target rate, the shortest clip).
        time_roll: roll by a random offset.
        gain_db: random gain within +-gain_db decibels (0: none).
        generator: RNG of the augmentations.
    """
    waveform = resample(torch.from_numpy(pcm16_to_float(samples)), rate, cfg.sample_rate)
    _check_length(waveform.shape[0], cfg)
    if time_roll:
        waveform = random_time_roll(waveform, generator)
    if gain_db > 0:
        waveform = random_gain(waveform, -gain_db, gain_db, generator)
    return waveform


class PCMWindow(NamedTuple):
    """int16 samples rolled right by ``shift``, then cut or zero-padded to ``length``."""

    samples: np.ndarray
    shift: int
    length: int

    def write(self, out: np.ndarray) -> None:
        """Write the window into ``out`` ([length], any numeric dtype), in one pass."""
        samples, shift, n = self.samples, self.shift, self.length
        valid = min(samples.shape[0], n)
        head = samples[samples.shape[0] - shift :] if shift else samples[:0]  # rolled to the front
        out[: min(shift, n)] = head[:n]
        if shift < n:
            out[shift:valid] = samples[: valid - shift]
        out[valid:] = 0

    def tensor(self) -> Tensor:
        """The window as an int16 tensor [length]."""
        out = np.empty(self.length, np.int16)
        self.write(out)
        return torch.from_numpy(out)


def device_waveform(
    samples: np.ndarray,
    rate: int,
    cfg: FbankConfig,
    time_roll: bool = False,
    gain_db: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[PCMWindow | Tensor, int]:
    """The worker half of ``audio_on_device``: the clip's fixed-length waveform, valid length.

    Args: as :func:`float_waveform`.

    Returns:
        ``(waveform, valid)``: a :class:`PCMWindow` at the feature rate without gain, else a
        float32 tensor; both :func:`waveform_samples` long once stacked.
    """
    if rate != cfg.sample_rate or gain_db > 0:
        return fit_waveform(float_waveform(samples, rate, cfg, time_roll, gain_db, generator), cfg)
    _check_length(samples.shape[0], cfg)
    shift = int(torch.randint(samples.shape[0], (1,), generator=generator)) if time_roll else 0
    n = waveform_samples(cfg)
    return PCMWindow(samples, shift, n), min(samples.shape[0], n)


def stack_waveforms(items: list[PCMWindow | Tensor]) -> Tensor:
    """Collate :func:`device_waveform` outputs into [B, samples].

    int16 when all are windows (each written once, straight into the batch), else float32 (windows
    scaled to [-1, 1)).
    """
    if all(isinstance(item, PCMWindow) for item in items):
        windows = cast("list[PCMWindow]", items)
        out = np.empty((len(windows), windows[0].length), np.int16)
        for row, item in zip(out, windows, strict=True):
            item.write(row)
        return torch.from_numpy(out)
    rows = [
        torch.from_numpy(pcm16_to_float(item.tensor().numpy()))
        if isinstance(item, PCMWindow)
        else item
        for item in items
    ]
    return torch.stack(rows)
