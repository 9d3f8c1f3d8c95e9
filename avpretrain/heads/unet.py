"""Audio U-Net of Sound of Pixels (``models/audio_net.py`` ``Unet``), depth and widths configurable.

Each encoder level halves the map with a 4x4 stride-2 conv (BatchNorm except the first, leaky
ReLU 0.2); each decoder level upsamples bilinearly x2 (``align_corners=True`` as SoP) and applies
a 3x3 conv (BatchNorm, ReLU; SoP puts the ReLU before the upsampling, the same up to the top
level),
its input the concatenation of the level below's output and the encoder's skip; the top level
outputs ``out_channels`` maps without norm or activation. An input BatchNorm normalises the
log-magnitude. SoP uses 7 levels of (64, 128, 256, 512, 512, 512, 512) on 256 x 256 inputs;
other sizes are padded (replicating the edge) to a multiple of ``2 ** depth`` and cropped back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SOP_CHANNELS = (64, 128, 256, 512, 512, 512, 512)


def _down(in_ch: int, out_ch: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def _up(in_ch: int, out_ch: int, last: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),  # as SoP
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=last),
    ]
    if not last:
        layers += [nn.BatchNorm2d(out_ch), nn.ReLU()]
    return nn.Sequential(*layers)


class AudioUNet(nn.Module):
    """U-Net from a one-channel spectrogram to ``out_channels`` maps of the same size.

    Args:
        channels: output channels of each encoder level, top first (its length is the depth).
        out_channels: maps at the output (SoP: 32, combined with the visual vector).
        in_channels: input channels.
        channels_last: run the convolutions on channels-last (NHWC) maps, the layout oneDNN's
            CPU kernels and cuDNN's tensor-core kernels prefer (`scripts/bench_unet.py`); the
            output is the same up to float rounding.
    """

    def __init__(
        self,
        channels: Sequence[int] = SOP_CHANNELS,
        out_channels: int = 32,
        in_channels: int = 1,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if not channels or any(c < 1 for c in channels) or out_channels < 1:
            raise ValueError(f"need positive channels and out_channels, got {channels}")
        self.channels = [int(c) for c in channels]
        self.out_channels = out_channels
        self.input_norm = nn.BatchNorm2d(in_channels)
        ins = [in_channels, *self.channels[:-1]]
        self.downs = nn.ModuleList(
            _down(i, o, norm=level > 0)
            for level, (i, o) in enumerate(zip(ins, self.channels, strict=True))
        )
        outs = [out_channels, *self.channels[:-1]]
        self.ups = nn.ModuleList(
            _up(c if level == len(self.channels) - 1 else 2 * c, o, last=level == 0)
            for level, (c, o) in enumerate(zip(self.channels, outs, strict=True))
        )
        if channels_last:  # the 4-D weights; every conv's output then takes their layout
            self.to(memory_format=torch.channels_last)

    @property
    def depth(self) -> int:
        """Number of resolution levels (one per entry of ``channels``)."""
        return len(self.channels)

    def forward(
        self, x: Tensor, condition: Callable[[int, Tensor], Tensor] | None = None
    ) -> Tensor:
        """Maps [B, out_channels, F, T] from ``x`` [B, in_channels, F, T] (any F, T).

        Args:
            x: input spectrogram(s).
            condition: optional ``f(level, features) -> features`` applied to each decoder
                level's input (level ``depth - 1`` is the bottleneck), where conditioning
                (FiLM, attention) enters.
        """
        height, width = x.shape[-2:]
        step = 2**self.depth
        pad_h, pad_w = -height % step, -width % step
        x = self.input_norm(x)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        y = skips.pop()
        for level in reversed(range(self.depth)):
            if level < self.depth - 1:
                y = torch.cat([y, skips.pop()], dim=1)
            if condition is not None:
                y = condition(level, y)
            y = self.ups[level](y)
        return y[..., :height, :width]
