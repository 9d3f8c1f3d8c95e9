"""The spectrogram front end of visually conditioned source separation (Sound of Pixels).

Sound of Pixels (hangzhaomit/Sound-of-Pixels) works at 11025 Hz with an STFT of 1022 points
and hop 256 (512 frequency bins; 65535 samples give 256 frames), Hann window; the magnitudes
are resampled onto a log-frequency axis of 256 bins with ``grid_sample`` (``utils.warpgrid``:
``grid_y = (21 ** ((y + 1) / 2) - 11) / 10`` warps, ``grid_y = log(10 y + 11) / log(21) * 2 - 1``
unwarps), the network predicts masks on that axis, and the predicted mask is unwarped to the
linear axis before it multiplies the mixture magnitude; the estimate is inverted with the
mixture phase and clipped to [-1, 1]. ``torch.stft``/``torch.istft`` replace librosa's (same
Hann window and centring; reflect padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class SpectrogramConfig:
    """STFT and frequency-warp settings (defaults: Sound of Pixels).

    Args:
        sample_rate: audio rate the waveforms are given at (the targets resample to it).
        n_fft: STFT size (``n_fft // 2 + 1`` linear frequency bins).
        hop_length: STFT hop in samples.
        log_freq: warp magnitudes to a log-frequency axis before the network.
        warp_bins: bins of the log-frequency axis.
    """

    sample_rate: int = 11025
    n_fft: int = 1022
    hop_length: int = 256
    log_freq: bool = True
    warp_bins: int = 256

    @property
    def freq_bins(self) -> int:
        """Linear frequency bins of the STFT."""
        return self.n_fft // 2 + 1

    @property
    def net_bins(self) -> int:
        """Frequency bins the network sees (warped or linear)."""
        return self.warp_bins if self.log_freq else self.freq_bins


def _window(cfg: SpectrogramConfig, like: Tensor) -> Tensor:
    return torch.hann_window(cfg.n_fft, device=like.device, dtype=torch.float32)


def stft_complex(waveform: Tensor, cfg: SpectrogramConfig) -> Tensor:
    """Complex STFT of waveforms, always in float32 (also under autocast).

    Args:
        waveform: [..., samples].
        cfg: STFT settings.

    Returns:
        [..., freq_bins, frames] complex64.
    """
    lead = waveform.shape[:-1]
    with torch.autocast(waveform.device.type, enabled=False):
        flat = waveform.reshape(-1, waveform.shape[-1]).float()
        spec = torch.stft(
            flat,
            cfg.n_fft,
            cfg.hop_length,
            window=_window(cfg, flat),
            center=True,
            return_complex=True,
        )
    return spec.reshape(*lead, *spec.shape[-2:])


def stft(waveform: Tensor, cfg: SpectrogramConfig) -> tuple[Tensor, Tensor]:
    """Magnitude and phase of waveforms (:func:`stft_complex`): each [..., freq_bins, frames]."""
    spec = stft_complex(waveform, cfg)
    return spec.abs(), spec.angle()


def istft(magnitude: Tensor, phase: Tensor, cfg: SpectrogramConfig, length: int) -> Tensor:
    """Waveforms from magnitudes and phases, clipped to [-1, 1] as Sound of Pixels does.

    Args:
        magnitude: [..., freq_bins, frames].
        phase: [..., freq_bins, frames] (broadcast against ``magnitude``).
        cfg: STFT settings.
        length: output samples.

    Returns:
        [..., length] float32.
    """
    magnitude, phase = torch.broadcast_tensors(magnitude.float(), phase.float())
    lead = magnitude.shape[:-2]
    with torch.autocast(magnitude.device.type, enabled=False):
        spec = torch.polar(magnitude, phase).reshape(-1, *magnitude.shape[-2:])
        wave = torch.istft(
            spec,
            cfg.n_fft,
            cfg.hop_length,
            window=_window(cfg, magnitude),
            center=True,
            length=length,
        )
    return wave.reshape(*lead, length).clamp(-1.0, 1.0)


def warp_grid(height: int, width: int, warp: bool, device: torch.device | None = None) -> Tensor:
    """Sampling grid of ``utils.warpgrid`` for one map: [1, height, width, 2] (x, y in [-1, 1]).

    ``warp=True`` samples a linear-frequency map at log-spaced rows (output ``height`` bins);
    ``warp=False`` samples a log-frequency map back at linear rows.
    """
    x = torch.linspace(-1.0, 1.0, width, device=device, dtype=torch.float64)
    y = torch.linspace(-1.0, 1.0, height, device=device, dtype=torch.float64)
    if warp:
        y = (21.0 ** ((y + 1) / 2) - 11) / 10
    else:
        y = torch.log(y * 10 + 11) / torch.log(torch.tensor(21.0, dtype=torch.float64)) * 2 - 1
    grid_y, grid_x = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)[None].float()


def _resample_rows(x: Tensor, height: int, warp: bool) -> Tensor:
    lead = x.shape[:-2]
    flat = x.reshape(-1, 1, *x.shape[-2:]).float()
    grid = warp_grid(height, x.shape[-1], warp, x.device).expand(flat.shape[0], -1, -1, -1)
    # align_corners=True: the grid's -1 / +1 are the first / last bin centres, as in SoP's era
    out = F.grid_sample(flat, grid, mode="bilinear", align_corners=True)
    return out.reshape(*lead, height, x.shape[-1])


def warp_frequency(x: Tensor, bins: int) -> Tensor:
    """Linear-frequency maps [..., F, T] resampled to log frequency: [..., bins, T]."""
    return _resample_rows(x, bins, warp=True)


def unwarp_frequency(x: Tensor, freq_bins: int) -> Tensor:
    """Log-frequency maps [..., bins, T] resampled back to linear frequency: [..., freq_bins, T]."""
    return _resample_rows(x, freq_bins, warp=False)
