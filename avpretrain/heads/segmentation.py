"""Audio-conditioned mask decoder on the visual patch tokens (audio-visual segmentation).

The visual patch tokens are laid back on their grid and upsampled in stages (bilinear x2, then
3x3 conv + GroupNorm + GELU), each stage modulated by the audio embedding with FiLM
(``x * (1 + gamma(a)) + beta(a)``), so which object is segmented can depend on what is heard;
a 1x1 conv gives one logit per pixel, resized to the frame if the stages do not land on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from avpretrain.heads.binding import already_bound


class FiLM(nn.Module):
    """Feature-wise affine modulation of a feature map by a conditioning vector.

    Args:
        cond_dim: width of the conditioning vector.
        channels: channels of the modulated map.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """``x`` [B, C, H, W] modulated by ``cond`` [B, cond_dim]."""
        gamma, beta = self.proj(cond)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta


def _groups(channels: int) -> int:
    """GroupNorm groups: up to 8, dividing ``channels`` (batch-size independent, unlike BN)."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class _Stage(nn.Module):
    """Bilinear x2 upsampling, conv, norm, GELU, then audio FiLM."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.norm = nn.GroupNorm(_groups(out_ch), out_ch)
        self.film = FiLM(cond_dim, out_ch)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.film(F.gelu(self.norm(self.conv(x))), cond)


class SegmentationHead(nn.Module):
    """Upsampling decoder from visual patch tokens to mask logits, conditioned on audio.

    Input widths are bound by the task once the encoders are known (:meth:`bind`), so a recipe
    only states the decoder's channels. With ViT patches of 16 pixels, four stages (the default)
    reach the frame size exactly; otherwise the last map is resized bilinearly to the frame.

    Args:
        channels: output channels of each x2 upsampling stage (their number is the number of
            stages).
        in_dim: visual token width; None until :meth:`bind`.
        audio_dim: audio embedding width; None until :meth:`bind`.
    """

    def __init__(
        self,
        channels: Sequence[int] = (256, 128, 64, 32),
        in_dim: int | None = None,
        audio_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels}")
        self.channels = [int(c) for c in channels]
        self.in_dim: int | None = None
        self.audio_dim: int | None = None
        if in_dim is not None and audio_dim is not None:
            self.bind(in_dim, audio_dim)

    def bind(self, in_dim: int, audio_dim: int) -> None:
        """Build the layers for visual tokens of width ``in_dim`` and audio of ``audio_dim``.

        A no-op if already built for these widths; an error if built for others.
        """
        if already_bound((self.in_dim, self.audio_dim), (in_dim, audio_dim)):
            return
        self.in_dim, self.audio_dim = in_dim, audio_dim
        first = self.channels[0]
        self.token_norm = nn.LayerNorm(in_dim)
        self.token_proj = nn.Conv2d(in_dim, first, 1)
        self.token_film = FiLM(audio_dim, first)
        widths = [first, *self.channels]
        self.stages = nn.ModuleList(
            _Stage(a, b, audio_dim) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.classifier = nn.Conv2d(self.channels[-1], 1, 1)

    def forward(
        self,
        tokens: Tensor,
        grid: tuple[int, int],
        audio: Tensor,
        size: tuple[int, int],
    ) -> Tensor:
        """Mask logits.

        Args:
            tokens: [B, N, D] visual patch tokens (no class token), row-major over ``grid``.
            grid: (rows, cols) of the patch grid, rows * cols = N.
            audio: [B, Da] audio embedding (zeros for a visual-only baseline).
            size: (H, W) of the frame.

        Returns:
            [B, 1, H, W] logits.
        """
        if self.in_dim is None:
            raise RuntimeError("SegmentationHead.bind(in_dim, audio_dim) was not called")
        b, n, _ = tokens.shape
        rows, cols = grid
        if rows * cols != n:
            raise ValueError(f"grid {grid} does not hold {n} tokens")
        x = self.token_norm(tokens).transpose(1, 2).reshape(b, -1, rows, cols)
        x = self.token_film(self.token_proj(x), audio)
        for stage in self.stages:
            x = stage(x, audio)
        logits = self.classifier(x)
        if tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits
