"""Audio-visual video parsing head: hybrid attention network plus multimodal MIL pooling.

Follows YapengTian/AVVP-ECCV20 ``nets/net_audiovisual.py`` (``HANLayer``, ``Encoder``,
``MMIL_Net``) on per-segment encoder embeddings instead of VGGish / ResNet-152 + R(2+1)D
features:

1. Each modality's T segment features are projected to ``dim`` (``fc_a``, ``fc_v``).
2. Hybrid attention (HAN): per layer, each modality's segments attend to themselves
   (self-attention) and to the other modality's segments (cross-modal attention); both results
   are added to the input (residual), then LayerNorm, a ReLU feed-forward with residual and a
   second LayerNorm (post-norm, as the official layer). One layer serves both modalities, as
   the official ``Encoder`` calls the same layer for audio and visual. Unlike the official
   ``Encoder``, which feeds every layer the *inputs* (so only the last of several layers
   counts), layers here are stacked; with the official single layer the two agree.
3. MMIL pooling (:func:`mmil_pool`): per segment and modality, class probabilities
   ``sigmoid(fc_prob(x))``; a softmax over time (``fc_frame_att``) and one over the two
   modalities (``fc_av_att``), both per class; the video-level probability is
   ``sum_t sum_m frame_att * av_att * frame_prob``, the modality-level ones
   ``sum_t frame_att * frame_prob``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avpretrain.heads.binding import already_bound

# The official training clamps the pooled probabilities before BCE (``output.clamp_``).
PROB_EPS = 1e-7


def mmil_pool(
    frame_logits: Tensor, frame_att_logits: Tensor, av_att_logits: Tensor, eps: float = PROB_EPS
) -> dict[str, Tensor]:
    """Attentive multimodal multiple-instance pooling (official ``MMIL_Net.forward``'s end).

    The weights ``frame_att[t, m] * av_att[t, m]`` sum to a value in [0, 2], not to 1 (the
    time softmax is per modality, the modality softmax per segment), so the pooled values can
    exceed 1; they are clamped to ``[eps, 1 - eps]`` as the official training clamps them.

    Args:
        frame_logits: [B, T, 2, C] per-segment class logits, audio then visual.
        frame_att_logits: [B, T, 2, C] temporal attention logits (softmax over T).
        av_att_logits: [B, T, 2, C] modality attention logits (softmax over the 2 modalities).
        eps: clamp margin of the pooled probabilities.

    Returns:
        ``frame_prob`` [B, T, 2, C] (sigmoid of ``frame_logits``, unclamped), ``global_prob``
        [B, C] (video level), ``audio_prob`` and ``visual_prob`` [B, C] (modality level).
    """
    if not frame_logits.shape == frame_att_logits.shape == av_att_logits.shape:
        raise ValueError(
            f"MMIL inputs differ in shape: {tuple(frame_logits.shape)}, "
            f"{tuple(frame_att_logits.shape)}, {tuple(av_att_logits.shape)}"
        )
    if frame_logits.ndim != 4 or frame_logits.shape[2] != 2:
        raise ValueError(f"MMIL inputs must be [B, T, 2, C], got {tuple(frame_logits.shape)}")
    # float32: in bf16 the clamp bound 1 - eps rounds to 1 and the BCE would meet log(0)
    frame_prob = torch.sigmoid(frame_logits.float())
    frame_att = torch.softmax(frame_att_logits.float(), dim=1)
    av_att = torch.softmax(av_att_logits.float(), dim=2)
    temporal = frame_att * frame_prob  # [B, T, 2, C]
    return {
        "frame_prob": frame_prob,
        "global_prob": (temporal * av_att).sum(dim=(1, 2)).clamp(eps, 1 - eps),
        "audio_prob": temporal[:, :, 0].sum(dim=1).clamp(eps, 1 - eps),
        "visual_prob": temporal[:, :, 1].sum(dim=1).clamp(eps, 1 - eps),
    }


class HANLayer(nn.Module):
    """One hybrid attention layer: self- plus cross-modal attention, then a feed-forward.

    Args:
        dim: feature width.
        num_heads: attention heads (1 in the official model).
        ffn_dim: feed-forward hidden width (512 officially).
        dropout: dropout on both attention outputs and the feed-forward (0.1 officially).
    """

    def __init__(
        self, dim: int, num_heads: int = 1, ffn_dim: int = 512, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.cm_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, dim)
        )
        self.drop_cm, self.drop_self, self.drop_ffn = (nn.Dropout(dropout) for _ in range(3))
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        """Update one modality.

        Args:
            x: [B, T, D] this modality's segments.
            other: [B, T, D] the other modality's segments (keys and values of the cross
                attention).

        Returns:
            [B, T, D].
        """
        cross = self.cm_attn(x, other, other, need_weights=False)[0]
        own = self.self_attn(x, x, x, need_weights=False)[0]
        x = self.norm1(x + self.drop_cm(cross) + self.drop_self(own))
        return self.norm2(x + self.drop_ffn(self.ffn(x)))


class ParsingHead(nn.Module):
    """HAN + MMIL on T per-segment audio and visual embeddings (see the module docstring).

    Input widths are bound by the task once the encoders are known (:meth:`bind`).

    Args:
        num_classes: event classes C (25 in LLP).
        dim: width of the HAN (512 officially).
        num_layers: HAN layers (1 officially).
        num_heads: attention heads (1 officially).
        ffn_dim: feed-forward hidden width.
        dropout: HAN dropout.
        audio_dim: audio embedding width; None until :meth:`bind`.
        video_dim: visual embedding width; None until :meth:`bind`.
    """

    def __init__(
        self,
        num_classes: int,
        dim: int = 512,
        num_layers: int = 1,
        num_heads: int = 1,
        ffn_dim: int = 512,
        dropout: float = 0.1,
        audio_dim: int | None = None,
        video_dim: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 1 or num_layers < 1:
            raise ValueError(f"need num_classes, num_layers >= 1: {num_classes}, {num_layers}")
        self.num_classes, self.dim = num_classes, dim
        self.layers = nn.ModuleList(
            HANLayer(dim, num_heads, ffn_dim, dropout) for _ in range(num_layers)
        )
        self.fc_prob = nn.Linear(dim, num_classes)
        self.fc_frame_att = nn.Linear(dim, num_classes)
        self.fc_av_att = nn.Linear(dim, num_classes)
        self.fc_a: nn.Linear | None = None
        self.fc_v: nn.Linear | None = None
        self.widths: tuple[int | None, int | None] = (None, None)
        if audio_dim is not None and video_dim is not None:
            self.bind(audio_dim, video_dim)

    def bind(self, audio_dim: int, video_dim: int) -> None:
        """Build the input projections (no-op if built for these widths)."""
        if already_bound(self.widths, (audio_dim, video_dim)):
            return
        self.fc_a = nn.Linear(audio_dim, self.dim)
        self.fc_v = nn.Linear(video_dim, self.dim)
        self.widths = (audio_dim, video_dim)

    def forward(self, audio: Tensor, video: Tensor) -> dict[str, Tensor]:
        """Parse a batch of clips.

        Args:
            audio: [B, T, Da] per-segment audio embeddings.
            video: [B, T, Dv] per-segment visual embeddings.

        Returns:
            :func:`mmil_pool`'s dict: ``frame_prob`` [B, T, 2, C] (audio then visual),
            ``global_prob``, ``audio_prob``, ``visual_prob`` [B, C].
        """
        if self.fc_a is None or self.fc_v is None:
            raise RuntimeError("ParsingHead.bind(audio_dim, video_dim) was not called")
        if audio.shape[:2] != video.shape[:2]:
            raise ValueError(
                f"audio {tuple(audio.shape)} and video {tuple(video.shape)} segments differ"
            )
        a, v = self.fc_a(audio), self.fc_v(video)
        for layer in self.layers:
            a, v = layer(a, v), layer(v, a)  # both updated from the previous layer's outputs
        x = torch.stack([a, v], dim=2)  # [B, T, 2, D]
        return mmil_pool(self.fc_prob(x), self.fc_frame_att(x), self.fc_av_att(x))


def parsing_loss(
    out: dict[str, Tensor],
    weak: Tensor,
    modality_weight: float = 1.0,
    audio_smoothing: float = 0.0,
    visual_smoothing: float = 0.1,
) -> dict[str, Tensor]:
    """Weakly supervised loss of the official ``main_avvp.py:train``.

    BCE of the video-level probability against the weak labels, plus ("individual guided
    learning") BCE of the audio- and visual-level probabilities against the weak labels
    smoothed towards 0.5: ``P = (1 - s) * weak + s * 0.5`` with ``s`` 0 for audio and 0.1 for
    visual officially (the visual track often lacks a labelled event).

    Args:
        out: :class:`ParsingHead`'s outputs.
        weak: [B, C] video-level 0/1 labels.
        modality_weight: weight of the two modality terms (1 officially; 0: video level only).
        audio_smoothing: ``s`` of the audio term.
        visual_smoothing: ``s`` of the visual term.

    Returns:
        ``loss`` (the total), ``loss_video``, and with ``modality_weight > 0`` ``loss_audio``
        and ``loss_visual``.
    """
    weak = weak.float()
    # binary_cross_entropy refuses autocast regions; the probabilities are float32 already
    with torch.autocast(weak.device.type, enabled=False):
        video = F.binary_cross_entropy(out["global_prob"].float(), weak)
        losses = {"loss": video, "loss_video": video}
        if modality_weight > 0:
            pa = (1 - audio_smoothing) * weak + audio_smoothing * 0.5
            pv = (1 - visual_smoothing) * weak + visual_smoothing * 0.5
            audio = F.binary_cross_entropy(out["audio_prob"].float(), pa)
            visual = F.binary_cross_entropy(out["visual_prob"].float(), pv)
            losses.update(loss=video + modality_weight * (audio + visual))
            losses.update(loss_audio=audio, loss_visual=visual)
    return losses
