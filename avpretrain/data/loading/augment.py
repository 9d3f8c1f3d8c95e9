"""Audio augmentations, as pure functions seeded by an optional ``torch.Generator``.

With ``generator=None`` the global torch RNG is used, so draws follow ``torch.manual_seed``.
Everything works on one sample or a batch (leading dimensions) and on any device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# Beyond +-40 dB (x100 in amplitude) the log-mel features leave their normalised range by
# several standard deviations; +-1000 dB overflows float32 to inf and every loss becomes NaN.
MAX_GAIN_DB = 40.0


def check_augment_args(
    num_mel_bins: int,
    num_frames: int,
    gain_db: float = 0.0,
    spec_freq_mask: int = 0,
    spec_time_mask: int = 0,
    mixup_alpha: float = 0.0,
) -> None:
    """Refuse augmentation settings that can only produce garbage, before any data is read.

    Args:
        num_mel_bins: F of the [.., F, T] spectrogram SpecAugment masks.
        num_frames: T of that spectrogram.
        gain_db: random gain bound in dB, within ``[0, MAX_GAIN_DB]``.
        spec_freq_mask: SpecAugment frequency band bound, within ``[0, num_mel_bins)``.
        spec_time_mask: SpecAugment time band bound, within ``[0, num_frames)``.
        mixup_alpha: Beta concentration, finite and ``>= 0``.

    Raises:
        ValueError: naming the argument, its value and the allowed range.
    """
    problems = []
    if not 0.0 <= gain_db <= MAX_GAIN_DB:  # also false for NaN
        problems.append(
            f"gain_db {gain_db} outside [0, {MAX_GAIN_DB:g}] (a +-range in decibels, typically "
            f"3-6; x{10 ** (MAX_GAIN_DB / 20):g} in amplitude is the most allowed)"
        )
    if not 0 <= spec_freq_mask < num_mel_bins:
        problems.append(f"spec_freq_mask {spec_freq_mask} outside [0, {num_mel_bins}) mel bins")
    if not 0 <= spec_time_mask < num_frames:
        problems.append(f"spec_time_mask {spec_time_mask} outside [0, {num_frames}) frames")
    if not 0.0 <= mixup_alpha < float("inf"):
        problems.append(f"mixup_alpha {mixup_alpha} is not a finite number >= 0")
    if problems:
        raise ValueError("augmentation arguments refused: " + "; ".join(problems))


def _draw_device(like: Tensor, generator: torch.Generator | None) -> torch.device:
    """Device to draw on: a generator only draws on its own device."""
    return generator.device if generator is not None else like.device


def _rand(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform [0, 1) draws of ``shape`` on ``like``'s device (float32 unless ``like`` is float)."""
    dtype = like.dtype if like.is_floating_point() else torch.float32
    u = torch.rand(shape, generator=generator, device=_draw_device(like, generator), dtype=dtype)
    return u.to(like.device)


def random_time_roll(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Circularly shift the last (time) axis by a uniform random offset, one per row.

    AudioMAE and CAV-MAE roll the waveform before computing features; on a waveform the roll
    keeps every sample and so the clip's content.

    Args:
        x: [..., samples] waveform (or [..., F, T] spectrogram, rolled along T).
        generator: RNG for the offsets.

    Returns:
        Same shape as ``x``; each 1-D row along the last axis is ``torch.roll``-ed by its own
        offset in ``[0, length)``.
    """
    length = x.shape[-1]
    shape = x.shape[:-1] + (1,)
    shift = torch.randint(length, shape, generator=generator, device=_draw_device(x, generator))
    shift = shift.to(x.device)
    # Shifting right by s means output[t] = input[t - s].
    index = (torch.arange(length, device=x.device) - shift) % length
    return torch.gather(x, -1, index.expand(x.shape))


def random_gain(
    waveform: Tensor,
    min_db: float = -6.0,
    max_db: float = 6.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Scale each waveform by a gain drawn uniformly in decibels.

    Args:
        waveform: [..., samples] float.
        min_db: lowest gain, dB.
        max_db: highest gain, dB.
        generator: RNG for the gains (one uniform draw per row, ``min + (max - min) * u``).

    Returns:
        [..., samples], each row multiplied by ``10 ** (db / 20)``.
    """
    if min_db > max_db:
        raise ValueError(f"random_gain: min_db {min_db} > max_db {max_db}")
    db = min_db + (max_db - min_db) * _rand(waveform.shape[:-1] + (1,), waveform, generator)
    return waveform * torch.pow(10.0, db / 20.0)


def _mask_axis(
    spec: Tensor, mask_param: int, axis: int, mask_value: float, generator: torch.Generator | None
) -> Tensor:
    """One iid band mask per spectrogram along ``axis`` (-2 frequency, -1 time).

    Draws like ``torchaudio.functional.mask_along_axis_iid``: width ``v = u1 * mask_param`` and
    start ``v0 = u2 * (size - v)``, both floored; positions ``[v0, v0 + v)`` take ``mask_value``.
    """
    if mask_param < 1:
        return spec
    size = spec.shape[axis]
    leading = spec.shape[:-2]
    width = _rand(leading, spec, generator) * mask_param
    start = _rand(leading, spec, generator) * (size - width)
    start, end = start.long(), start.long() + width.long()
    pos = torch.arange(size, device=spec.device)
    band = (pos >= start[..., None]) & (pos < end[..., None])  # [..., size]
    band = band.unsqueeze(-1) if axis == -2 else band.unsqueeze(-2)
    return spec.masked_fill(band, mask_value)


def spec_augment(
    spec: Tensor,
    freq_mask: int = 48,
    time_mask: int = 192,
    mask_value: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SpecAugment: one frequency band and one time band masked per spectrogram.

    Semantics of ``torchaudio.transforms.FrequencyMasking(freq_mask)`` followed by
    ``TimeMasking(time_mask)`` (with ``iid_masks`` for batches), but seedable: a band's width
    is below ``freq_mask`` / ``time_mask`` bins and it lies wholly inside the spectrogram.
    AudioMAE / CAV-MAE mask before normalising with 0, i.e. ``normalize(0)`` here.

    Args:
        spec: [1, F, T] or [B, 1, F, T].
        freq_mask: frequency band width bound (0 disables).
        time_mask: time band width bound (0 disables).
        mask_value: value written into the bands.
        generator: RNG for widths and positions.

    Returns:
        Masked copy with the shape of ``spec``.
    """
    if spec.dim() < 3:
        raise ValueError(f"spec_augment expects [..., F, T] with a channel axis, got {spec.shape}")
    spec = _mask_axis(spec, freq_mask, -2, mask_value, generator)
    return _mask_axis(spec, time_mask, -1, mask_value, generator)


def sample_beta(alpha: float, generator: torch.Generator | None = None) -> float:
    """One draw from Beta(alpha, alpha), reproducible from ``generator``.

    torch's Beta sampler takes no generator, so a numpy generator is seeded from it.
    """
    device = generator.device if generator is not None else None
    seed = int(torch.randint(2**62, (1,), generator=generator, device=device).item())
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mixup(
    audio: Tensor,
    video: Tensor | None,
    labels: Tensor,
    alpha: float = 10.0,
    generator: torch.Generator | None = None,
    lam: float | None = None,
) -> tuple[Tensor, Tensor | None, Tensor, float]:
    """Mix each sample with one from a shuffled copy of the batch (CAV-MAE style).

    ``out = lam * x + (1 - lam) * x[perm]`` for audio, video and labels alike, with one ``lam``
    per batch drawn from Beta(alpha, alpha) (CAV-MAE uses alpha 10). Mixing waveforms before
    the fbank (as CAV-MAE does) or spectrograms after is the caller's choice.

    Args:
        audio: [B, ...] waveforms or spectrograms.
        video: [B, ...] frames or None.
        labels: [B, C] float one-hot / multi-hot.
        alpha: Beta concentration; ``alpha <= 0`` disables mixing (lam = 1).
        generator: RNG for the permutation and lam.
        lam: fixed mixing weight instead of a drawn one.

    Returns:
        ``(audio, video, labels, lam)``, mixed, same shapes.
    """
    if labels.dim() != 2 or labels.shape[0] != audio.shape[0]:
        raise ValueError(
            f"mixup: labels must be [B, C] with B={audio.shape[0]}, got {labels.shape}"
        )
    if lam is None:
        lam = sample_beta(alpha, generator) if alpha > 0 else 1.0
    perm = torch.randperm(
        audio.shape[0], generator=generator, device=_draw_device(audio, generator)
    ).to(audio.device)

    def mix(x: Tensor) -> Tensor:
        return lam * x + (1.0 - lam) * x[perm]

    return mix(audio), None if video is None else mix(video), mix(labels.float()), lam
