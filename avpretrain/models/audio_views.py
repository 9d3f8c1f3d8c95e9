"""Random views of a spectrogram batch for the within-audio contrastive term.

A view shifts the log-mel spectrogram along the mel axis (an approximate pitch shift: on the
mel scale a pitch change moves a harmonic pattern by a near-constant number of bins) and rolls
it circularly in time. Two views of one clip keep what names a sound (timbre, envelope,
loudness) and differ in pitch and timing, so an InfoNCE between them teaches the encoder to
ignore pitch: SimCLR's recipe, with BYOL-A's view of what an audio augmentation should hide.
"""

from __future__ import annotations

import torch
from torch import Tensor


def shifted_view(audio: Tensor, max_shift: int, generator: torch.Generator | None = None) -> Tensor:
    """One random view of every spectrogram of a batch.

    Each sample is shifted by an integer number of mel bins drawn uniformly from
    ``[-max_shift, max_shift]`` (bins shifted in take the sample's minimum, the spectrogram's
    silence) and rolled in time by an offset drawn uniformly from ``[0, T)``.

    Args:
        audio: [B, 1, F, T] log-mel spectrograms.
        max_shift: largest mel-bin shift, ``0 <= max_shift < F``.
        generator: random source (on ``audio``'s device); None uses the global RNG.

    Returns:
        [B, 1, F, T], the same dtype and device.
    """
    if audio.ndim != 4:
        raise ValueError(f"shifted_view needs [B, 1, F, T] spectrograms, got {tuple(audio.shape)}")
    b, _, f, t = audio.shape
    if not 0 <= max_shift < f:
        raise ValueError(f"max_shift must be in [0, {f}) for {f} mel bins, got {max_shift}")
    device = audio.device
    shift = torch.randint(-max_shift, max_shift + 1, (b, 1), generator=generator, device=device)
    roll = torch.randint(0, t, (b, 1), generator=generator, device=device)
    src_f = torch.arange(f, device=device) - shift  # [B, F]: the bin each output bin reads
    inside = (src_f >= 0) & (src_f < f)
    src_t = (torch.arange(t, device=device) - roll) % t  # [B, T]
    out = audio.gather(2, src_f.clamp(0, f - 1)[:, None, :, None].expand(b, 1, f, t))
    out = out.gather(3, src_t[:, None, None, :].expand(b, 1, f, t))
    silence = audio.amin(dim=(1, 2, 3), keepdim=True)
    return torch.where(inside[:, None, :, None], out, silence)
