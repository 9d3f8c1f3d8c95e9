"""Projections of audio, video, fused audio-visual and text embeddings into one shared space."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avpretrain.heads.text import TextEncoder

# CLIP clamps the learned logit scale at 100 (temperature 0.01) so training cannot blow it up
MAX_LOGIT_SCALE = 100.0


def _projection(in_dim: int, out_dim: int, norm: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(in_dim) if norm else nn.Identity(), nn.Linear(in_dim, out_dim)
    )


class RetrievalHead(nn.Module):
    """Linear projections into a shared space of width ``embed_dim``, plus the text tower.

    Audio and video embeddings get one projection each (audio <-> visual retrieval). With a text
    encoder, their concatenation gets a third (the fused audio-visual embedding that captions
    are matched against) and the text encoder's pooled output a fourth; without one these are
    not built, so no parameter sits unused (DDP would stop on it). Outputs are L2-normalised.

    The temperature is a parameter ``log(1 / temperature)`` (CLIP's logit scale), one for the
    audio-video pair and one for text-audio-visual, learned when ``learn_temperature`` and fixed
    otherwise; the scale is clamped at 100.

    Input widths are bound by the task once the encoders are known (:meth:`bind`).

    Args:
        embed_dim: width of the shared space.
        text_encoder: the caption tower (e.g. :class:`~avpretrain.heads.text.TextEncoder`);
            None for audio <-> visual retrieval only.
        temperature: initial (or fixed) softmax temperature of InfoNCE.
        learn_temperature: learn the temperature (CLIP) rather than keep it fixed.
        norm: LayerNorm each input before its projection (frozen encoders' features vary in
            scale between modalities).
    """

    def __init__(
        self,
        embed_dim: int = 256,
        text_encoder: TextEncoder | None = None,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        norm: bool = True,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.embed_dim, self.norm_input = embed_dim, norm
        self.text_encoder = text_encoder
        scale = torch.full((2,), math.log(1.0 / temperature))
        self.logit_scale = nn.Parameter(scale, requires_grad=learn_temperature)
        self.audio_proj: nn.Sequential | None = None
        self.video_proj: nn.Sequential | None = None
        self.av_proj: nn.Sequential | None = None
        self.text_proj = (
            _projection(text_encoder.width, embed_dim, norm) if text_encoder is not None else None
        )

    @property
    def has_text(self) -> bool:
        """Whether the head has a text encoder (caption retrieval)."""
        return self.text_encoder is not None

    def bind(self, audio_dim: int, video_dim: int) -> None:
        """Build the projections for encoders of these widths (no-op if built for them)."""
        if self.audio_proj is not None:
            assert self.video_proj is not None  # built together
            built = (self.audio_proj[-1].in_features, self.video_proj[-1].in_features)
            if built != (audio_dim, video_dim):
                raise ValueError(f"head built for widths {built}, not {(audio_dim, video_dim)}")
            return
        self.audio_proj = _projection(audio_dim, self.embed_dim, self.norm_input)
        self.video_proj = _projection(video_dim, self.embed_dim, self.norm_input)
        if self.has_text:
            self.av_proj = _projection(audio_dim + video_dim, self.embed_dim, self.norm_input)

    def scales(self) -> tuple[Tensor, Tensor]:
        """Logit scales ``1 / temperature`` of the audio-video and text-AV pairs (scalars)."""
        scale = self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        return scale[0], scale[1]

    def forward(
        self, audio: Tensor, video: Tensor, text: tuple[Tensor, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """L2-normalised embeddings in the shared space.

        Args:
            audio: [B, Da] pooled audio embeddings.
            video: [B, Dv] pooled video embeddings.
            text: ``(ids [B, L], mask [B, L])`` from the text encoder's tokenizer, or None.

        Returns:
            ``audio``, ``video`` and, with ``text``, ``av`` (fused) and ``text``: each [B, E].
        """
        if self.audio_proj is None:
            raise RuntimeError("RetrievalHead.bind(audio_dim, video_dim) was not called")
        assert self.video_proj is not None  # built with audio_proj
        out = {"audio": self.audio_proj(audio), "video": self.video_proj(video)}
        if text is not None:
            if self.text_encoder is None:
                raise ValueError("text given but the head has no text_encoder")
            assert self.av_proj is not None and self.text_proj is not None  # exist with the encoder
            out["av"] = self.av_proj(torch.cat([audio, video], dim=-1))
            out["text"] = self.text_proj(self.text_encoder(*text))
        return {k: F.normalize(v, dim=-1) for k, v in out.items()}
