"""Visually conditioned mask predictor for mix-and-separate source separation.

An audio U-Net (:class:`~avpretrain.heads.unet.AudioUNet`) reads the mixture's log-magnitude
spectrogram; the visual embedding of the source to extract selects what it keeps. Two ways to
condition, chosen by ``conditioning``:

- ``product`` (Sound of Pixels' ``linear`` synthesizer): the U-Net gives K maps, the visual
  embedding a K-vector (linear, sigmoid as SoP's image activation); the mask logit is
  ``sum_k v_k * scale_k * a_k + bias``. The U-Net never sees the visual input.
- ``film``: every decoder level's input is modulated as ``x * (1 + gamma(v)) + beta(v)``, and a
  1x1 conv turns the K maps into the logit.

``visual_pool="max"`` (product only) follows SoP's visual pooling instead: SoP projects every
spatial position of the frame's feature map to the K channels and max-pools over positions
before the sigmoid (``models/vision_net.py``, ``pool_type="maxpool"``), so a small object that
sounds sets its channels wherever it is; here every video patch token is projected to K and the
maximum over the patches taken. ``mean`` reads the pooled clip embedding, where an object
covering a few patches is averaged with the rest of the frame.

The visual embeddings are first standardised over the batch (``visual_norm``: BatchNorm1d
without affine parameters, as MAE's linear probe puts before its classifier): embeddings of
different frames from a frozen encoder are close (cosine ~0.96 for random tiny encoders on the
synthetic world), and what selects a source is how they differ.

``attention_layers > 0`` adds self-attention layers at the U-Net's bottleneck over the
concatenation of the mixture's bottleneck positions (with 2-D sin-cos positions) and the
projected visual tokens, so the audio-mixture and visual representations attend to each other
before decoding (after the ACAV-1M paper's description of its decoder); the audio positions
are kept, residually.

With ``audio_dim`` bound (the task's ``mixture_audio``), the audio encoder's patch-token grid of
the mixture is added to every decoder level's input: projected to the level's width (1x1 conv)
on the token grid, then resized bilinearly to the level's map. The U-Net thus starts from what
the (pretrained) audio encoder hears in the mixture instead of learning it from the spectrogram
alone; the token grid's frequency rows (mel) are aligned to the U-Net's (log frequency) by
their order only, both running from low to high.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avpretrain.arguments import check_choice
from avpretrain.heads.binding import already_bound
from avpretrain.heads.segmentation import FiLM
from avpretrain.heads.unet import SOP_CHANNELS, AudioUNet
from avpretrain.models.pos_embed import sincos_2d

Conditioning = Literal["product", "film"]
VisualPool = Literal["mean", "max"]


class BottleneckAttention(nn.Module):
    """Transformer layers over [audio bottleneck positions; visual tokens], audio part returned.

    Args:
        channels: bottleneck channels (the token width; divisible by 4 and by ``heads``).
        visual_dim: visual token width.
        layers: transformer layers.
        heads: attention heads.
    """

    def __init__(self, channels: int, visual_dim: int, layers: int, heads: int) -> None:
        super().__init__()
        self.visual_proj = nn.Linear(visual_dim, channels)
        self.type_embed = nn.Parameter(torch.zeros(2, channels))
        layer = nn.TransformerEncoderLayer(
            channels, heads, 4 * channels, dropout=0.0, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, x: Tensor, visual_tokens: Tensor) -> Tensor:
        """``x`` [B, C, h, w] attended with ``visual_tokens`` [B, N, visual_dim]: [B, C, h, w]."""
        b, c, h, w = x.shape
        audio = x.flatten(2).transpose(1, 2) + sincos_2d(c, (h, w)).to(x) + self.type_embed[0]
        visual = self.visual_proj(visual_tokens) + self.type_embed[1]
        out = self.layers(torch.cat([audio, visual], dim=1))[:, : h * w]
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class SeparationHead(nn.Module):
    """Mask logits of sources from the mixture spectrogram and each source's visual features.

    The visual width is bound by the task once the encoders are known (:meth:`bind`).

    Args:
        channels: U-Net encoder widths, top first (SoP: 7 levels, 64 ... 512).
        feature_channels: K, the U-Net's output maps (SoP: 32).
        conditioning: ``product`` (SoP) or ``film`` (see the module docstring).
        attention_layers: self-attention layers at the bottleneck (0: none).
        attention_heads: their heads.
        visual_norm: standardise the visual embeddings (or tokens) over the batch (see the module
            docstring).
        visual_pool: ``mean`` (the given pooled embedding) or ``max`` (SoP: every patch token
            projected to the K channels, maximum over the patches; ``product`` only).
        visual_dim: visual embedding / token width; None until :meth:`bind`.
        audio_dim: width of the mixture's audio tokens (None: the head reads the spectrogram
            alone); usually bound by the task.
    """

    def __init__(
        self,
        channels: Sequence[int] = SOP_CHANNELS,
        feature_channels: int = 32,
        conditioning: Conditioning = "product",
        attention_layers: int = 0,
        attention_heads: int = 4,
        visual_norm: bool = True,
        visual_pool: VisualPool = "mean",
        visual_dim: int | None = None,
        audio_dim: int | None = None,
    ) -> None:
        super().__init__()
        check_choice("conditioning", conditioning, Conditioning)
        check_choice("visual_pool", visual_pool, VisualPool)
        if visual_pool == "max" and conditioning != "product":
            raise ValueError("visual_pool='max' projects tokens to the product's K channels")
        if attention_layers < 0:
            raise ValueError(f"attention_layers must be >= 0, got {attention_layers}")
        self.conditioning = conditioning
        self.attention_layers, self.attention_heads = attention_layers, attention_heads
        self.visual_norm, self.visual_pool = visual_norm, visual_pool
        self.unet = AudioUNet(channels, feature_channels)
        self.visual_dim: int | None = None
        self.audio_dim: int | None = None
        if visual_dim is not None:
            self.bind(visual_dim, audio_dim)

    def bind(self, visual_dim: int, audio_dim: int | None = None) -> None:
        """Build the layers that read the visual (and ``audio_dim``: mixture audio) features.

        Once; binding again is a no-op with equal widths and an error with others.
        """
        if already_bound((self.visual_dim, self.audio_dim), (visual_dim, audio_dim)):
            return
        self.visual_dim, self.audio_dim = visual_dim, audio_dim
        if self.visual_norm:
            self.visual_bn = nn.BatchNorm1d(visual_dim, affine=False)
        chans, k = self.unet.channels, self.unet.out_channels
        # decoder level l reads its skip concatenated with the level below (not the bottleneck)
        widths = [c if level == len(chans) - 1 else 2 * c for level, c in enumerate(chans)]
        if audio_dim is not None:
            self.audio_proj = nn.ModuleList(nn.Conv2d(audio_dim, w, 1) for w in widths)
        if self.conditioning == "product":
            self.visual_proj = nn.Linear(visual_dim, k)
            self.scale = nn.Parameter(torch.ones(k))
            self.bias = nn.Parameter(torch.zeros(1))
        else:
            self.films = nn.ModuleList(FiLM(visual_dim, c) for c in widths)
            self.out = nn.Conv2d(k, 1, 1)
        if self.attention_layers:
            self.attention = BottleneckAttention(
                chans[-1], visual_dim, self.attention_layers, self.attention_heads
            )

    def forward(
        self,
        log_mag: Tensor,
        visual: Tensor,
        visual_tokens: Tensor | None = None,
        audio_grid: Tensor | None = None,
    ) -> Tensor:
        """Mask logits of S sources of each mixture.

        Args:
            log_mag: [B, 1, F, T] log-magnitude of the mixtures (any F, T).
            visual: [B, S, D] embeddings of the sources to extract ([B, D]: S = 1).
            visual_tokens: [B, S, N, D] their patch tokens ([B, N, D]: S = 1), needed when
                ``attention_layers > 0`` or ``visual_pool="max"``.
            audio_grid: [B, audio_dim, h, w] the mixtures' audio tokens on their patch grid
                (frequency rows low to high, time columns), needed when ``audio_dim`` is bound.

        Returns:
            [B, S, F, T] logits of each source's time-frequency mask.
        """
        if self.visual_dim is None:
            raise RuntimeError("SeparationHead.bind(visual_dim) must be called first")
        if (self.attention_layers or self.visual_pool == "max") and visual_tokens is None:
            raise ValueError("attention_layers > 0 and visual_pool='max' need visual_tokens")
        if (self.audio_dim is None) != (audio_grid is None):
            raise ValueError(
                f"the head was bound with audio_dim={self.audio_dim}: it needs audio_grid "
                "exactly when audio_dim is set"
            )
        if visual.dim() == 2:
            visual = visual[:, None]
            visual_tokens = None if visual_tokens is None else visual_tokens[:, None]
        b, s = visual.shape[:2]
        if self.visual_norm and self.visual_pool == "mean":
            visual = self.visual_bn(visual.flatten(0, 1)).reshape(b, s, -1)
        if self.conditioning == "product":
            weights = self.channel_weights(visual, visual_tokens)  # [B, S, K]
        if self.conditioning == "product" and not self.attention_layers:
            # the U-Net never sees the visual input: run it once per mixture, not per source
            maps = self.unet(log_mag, self.audio_condition(audio_grid))
            return torch.einsum("bsk,bkft->bsft", weights, maps) + self.bias
        visual = visual.flatten(0, 1)
        tokens = None if visual_tokens is None else visual_tokens.flatten(0, 1)
        grid = None if audio_grid is None else audio_grid.repeat_interleave(s, dim=0)
        with_audio = self.audio_condition(grid)
        bottleneck = self.unet.depth - 1

        def condition(level: int, x: Tensor) -> Tensor:
            if with_audio is not None:
                x = with_audio(level, x)
            if self.attention_layers and level == bottleneck:
                x = self.attention(x, tokens)
            return self.films[level](x, visual) if self.conditioning == "film" else x

        maps = self.unet(log_mag.repeat_interleave(s, dim=0), condition)  # [B S, K, F, T]
        if self.conditioning == "film":
            logits = self.out(maps)
        else:
            logits = torch.einsum("bk,bkft->bft", weights.flatten(0, 1), maps)[:, None] + self.bias
        return logits.reshape(b, s, *logits.shape[-2:])

    def audio_condition(self, grid: Tensor | None) -> Callable[[int, Tensor], Tensor] | None:
        """The U-Net hook adding ``grid`` [B, audio_dim, h, w] to each decoder level's input.

        Projected to the level's width on the token grid, then resized to the level's map.
        None without a grid.
        """
        if grid is None:
            return None

        def add(level: int, x: Tensor) -> Tensor:
            projected = self.audio_proj[level](grid)
            return x + F.interpolate(projected, size=x.shape[-2:], mode="bilinear")

        return add

    def channel_weights(self, visual: Tensor, visual_tokens: Tensor | None) -> Tensor:
        """The product's per-channel weights ``sigmoid(v) * scale``: [B, S, K].

        Args:
            visual: [B, S, D] embeddings, already standardised (``visual_pool="mean"``).
            visual_tokens: [B, S, N, D] patch tokens (``visual_pool="max"``; standardised here).
        """
        if self.visual_pool == "mean":
            return torch.sigmoid(self.visual_proj(visual)) * self.scale
        x = visual_tokens
        assert x is not None  # visual_pool="max" passes the tokens
        if self.visual_norm:
            x = self.visual_bn(x.flatten(0, 2)).reshape(x.shape)
        # SoP: the maximum over spatial positions of the projected feature map
        return torch.sigmoid(self.visual_proj(x).amax(dim=2)) * self.scale
