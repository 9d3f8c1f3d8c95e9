"""Spatio-temporal audio-visual question answering head (ST-AVQA, MUSIC-AVQA's baseline).

Follows GeWu-Lab/MUSIC-AVQA ``net_grd_avst/net_avst.py`` (``AVQA_Fusion_Net``) on per-segment
encoder features instead of VGGish / ResNet-18 maps:

1. Spatial grounding, per segment: a query (the segment's audio feature, plus the question when
   ``question_spatial``) attends over the frame's patch tokens by cosine score and softmax over
   the patches (the official temperature is 1: cosine scores in [-1, 1] then give nearly uniform
   weights over many patches, so a lower ``spatial_temperature`` is offered); the attended
   feature, concatenated with the mean patch feature, goes through ``tanh`` and a linear layer
   (``fc_gl``).
2. Temporal grounding: the question attends (multi-head) over the T segments' audio features
   and, separately, over their grounded visual features; each gets a residual feed-forward and
   LayerNorm, and is added to the segments' mean.
3. Fusion: ``tanh(cat(audio, visual))`` -> linear, multiplied by the question feature,
   ``tanh``, the answer classifier over the answer vocabulary.
4. Audio-visual matching (training aid, weight 0.5 in the official loss): an MLP tells whether
   a segment's grounded visual feature belongs to its audio; negatives are frames of another
   clip (the official loader draws random frames of other videos; here, the next clip of the
   batch at the same segment).

The question encoder is :class:`~avpretrain.heads.text.TextEncoder` on UTF-8 bytes (no vocabulary
file) in place of the official word-level LSTM.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avpretrain.heads.text import TextEncoder


class TemporalGrounding(nn.Module):
    """The question attends over T segment features, then a residual feed-forward and norm.

    Args:
        dim: feature width.
        num_heads: attention heads.
        dropout: dropout on the attention and the feed-forward (0.1 in the official model).
    """

    def __init__(self, dim: int, num_heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, query: Tensor, segments: Tensor) -> tuple[Tensor, Tensor]:
        """Attend.

        Args:
            query: [Q, D] question features.
            segments: [Q, T, D] per-segment features.

        Returns:
            ``feature`` [Q, D] (attended, feed-forward, norm, plus the segments' mean) and
            ``weights`` [Q, T] (head-averaged attention; each row sums to 1).
        """
        out, weights = self.attn(query[:, None], segments, segments, need_weights=True)
        out = out[:, 0]
        out = self.norm(out + self.drop(self.ff(out)))
        return out + segments.mean(dim=1), weights[:, 0]


class AVQAHead(nn.Module):
    """Answer logits from per-segment audio features, frame patch tokens and a question.

    Input widths are bound by the task once the encoders are known (:meth:`bind`).

    Args:
        dim: width of the head's features (512 in the official model).
        text_encoder: the question encoder; None builds a 2-layer ``TextEncoder`` of width
            ``dim`` reading up to 128 bytes.
        num_heads: heads of the temporal attention.
        dropout: dropout of the temporal attention blocks.
        question_spatial: add the question to the audio query of the spatial grounding (the
            official model grounds by audio alone).
        spatial_temperature: divides the cosine scores before the softmax over patches (1.0
            as the official model).
    """

    def __init__(
        self,
        dim: int = 256,
        text_encoder: TextEncoder | None = None,
        num_heads: int = 4,
        dropout: float = 0.1,
        question_spatial: bool = True,
        spatial_temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if spatial_temperature <= 0:
            raise ValueError(f"spatial_temperature must be > 0, got {spatial_temperature}")
        self.dim, self.question_spatial = dim, question_spatial
        self.spatial_temperature = spatial_temperature
        self.text_encoder = text_encoder or TextEncoder(width=dim, depth=2, max_length=128)
        self.fc_q = nn.Linear(self.text_encoder.width, dim)
        self.fc_gl = nn.Linear(2 * dim, dim)
        self.temporal_audio = TemporalGrounding(dim, num_heads, dropout)
        self.temporal_video = TemporalGrounding(dim, num_heads, dropout)
        self.fc_fusion = nn.Linear(2 * dim, dim)
        self.match = nn.Sequential(
            nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, dim // 2), nn.ReLU()
        )
        self.match_out = nn.Linear(dim // 2, 2)
        self.proj_audio: nn.Sequential | None = None
        self.proj_video: nn.Linear | None = None
        self.fc_ans: nn.Linear | None = None

    def bind(self, audio_dim: int, video_dim: int, num_answers: int) -> None:
        """Build the input projections and the classifier (no-op if built for these sizes)."""
        if self.fc_ans is not None:
            assert self.proj_audio is not None and self.proj_video is not None  # built together
            built = (self.proj_audio[0].in_features, self.proj_video.in_features)
            if built != (audio_dim, video_dim) or self.fc_ans.out_features != num_answers:
                raise ValueError(
                    f"head built for widths {built} and {self.fc_ans.out_features} answers, "
                    f"not {(audio_dim, video_dim)} and {num_answers}"
                )
            return
        # the official audio path is two layers (fc_a1, fc_a2) on VGGish features
        self.proj_audio = nn.Sequential(
            nn.Linear(audio_dim, self.dim), nn.ReLU(), nn.Linear(self.dim, self.dim)
        )
        self.proj_video = nn.Linear(video_dim, self.dim)
        self.fc_ans = nn.Linear(self.dim, num_answers)

    def encode_question(self, questions: list[str]) -> Tensor:
        """Question features [Q, dim] of Q strings.

        Templated questions repeat across clips, so each distinct text is encoded once, and
        only up to the longest one's length (the encoder's pooling ignores padding anyway).
        """
        unique = list(dict.fromkeys(questions))
        ids, mask = self.text_encoder.tokenizer(unique)
        length = int(mask.sum(1).max())
        device = self.fc_q.weight.device
        emb = self.text_encoder(ids[:, :length].to(device), mask[:, :length].to(device))
        where = {text: i for i, text in enumerate(unique)}
        return self.fc_q(emb)[torch.tensor([where[t] for t in questions], device=device)]

    def spatial_grounding(self, query: Tensor, patches: Tensor) -> tuple[Tensor, Tensor]:
        """Ground each segment's query in its frame.

        Args:
            query: [Q, T, D] audio (+ question) query per segment.
            patches: [Q, T, N, D] projected patch tokens.

        Returns:
            ``feature`` [Q, T, D] (``fc_gl`` of tanh of [mean patch, attended patch]) and
            ``weights`` [Q, T, N] (softmax over the N patches of the cosine scores divided by
            ``spatial_temperature``).
        """
        keys = F.normalize(patches, dim=-1)
        scores = torch.einsum("qtnd,qtd->qtn", keys, F.normalize(query, dim=-1))
        weights = (scores / self.spatial_temperature).softmax(dim=-1)
        attended = torch.einsum("qtn,qtnd->qtd", weights, keys)
        both = torch.cat([patches.mean(dim=2), attended], dim=-1)
        return self.fc_gl(torch.tanh(both)), weights

    def forward(
        self,
        audio: Tensor,
        video: Tensor,
        questions: list[str],
        clip_index: Tensor,
        with_match: bool = False,
    ) -> dict[str, Tensor]:
        """Answer Q questions about B clips.

        Args:
            audio: [B, T, Da] per-segment audio embeddings.
            video: [B, T, N, Dv] per-segment frame patch tokens (no class token).
            questions: Q strings.
            clip_index: [Q] long, the clip (row of ``audio`` / ``video``) each question is about.
            with_match: also score audio-visual matching against the next clip's frames.

        Returns:
            ``logits`` [Q, A]; ``spatial`` [Q, T, N], ``temporal_audio`` and
            ``temporal_video`` [Q, T] attention weights; with ``with_match`` (and B > 1)
            ``match_logits`` [2 Q T, 2] and ``match_labels`` [2 Q T] (1 = own frames).
        """
        if self.fc_ans is None:
            raise RuntimeError("AVQAHead.bind(audio_dim, video_dim, num_answers) was not called")
        assert self.proj_audio is not None and self.proj_video is not None  # built with fc_ans
        q = self.encode_question(questions)  # [Q, D]
        a = self.proj_audio(audio)[clip_index]  # [Q, T, D]
        v_clip = self.proj_video(video)  # [B, T, N, D]
        query = a + q[:, None] if self.question_spatial else a
        v, spatial = self.spatial_grounding(query, v_clip[clip_index])
        att_a, w_a = self.temporal_audio(q, a)
        att_v, w_v = self.temporal_video(q, v)
        fused = self.fc_fusion(torch.tanh(torch.cat([att_a, att_v], dim=-1)))
        logits = self.fc_ans(torch.tanh(fused * q))
        out = {"logits": logits, "spatial": spatial, "temporal_audio": w_a, "temporal_video": w_v}
        if with_match and video.shape[0] > 1:
            neg, _ = self.spatial_grounding(query, v_clip[(clip_index + 1) % video.shape[0]])
            pairs = torch.cat([torch.cat([a, v], -1), torch.cat([a, neg], -1)]).flatten(0, 1)
            out["match_logits"] = self.match_out(self.match(pairs))
            labels = torch.zeros(2, *a.shape[:2], dtype=torch.long, device=a.device)
            labels[0] = 1
            out["match_labels"] = labels.flatten()
        return out
