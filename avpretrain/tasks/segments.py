"""Segments of a clip for the tasks that reason over time (parsing, music_avqa).

The fbank is cut into T equal spans and one frame is picked per span, so the pretrained encoders
embed each segment on its own (the audio encoder recomputes its positions for the shorter grid).
"""

from __future__ import annotations

import torch
from torch import Tensor


def segment_inputs(
    audio: Tensor, video: Tensor, num_segments: int, patch_width: int
) -> tuple[Tensor, Tensor]:
    """Cut a batch into T segments: equal fbank spans and one frame per span.

    Args:
        audio: [B, 1, F, Tf] fbank.
        video: [B, 3, Fv, H, W] frames (one per equal span of the clip) or [B, 3, H, W].
        num_segments: T.
        patch_width: the audio encoder's patch width along time; each span is cut to a multiple.

    Returns:
        ``audio`` [B T, 1, F, t] (spans starting at ``floor(i Tf / T)``, t = ``Tf // T`` rounded
        down to ``patch_width``) and ``frames`` [B T, 3, H, W] (frame ``floor((i + 0.5) Fv /
        T)``; a single frame serves every segment).
    """
    b, _, mels, length = audio.shape
    span = (length // num_segments) // patch_width * patch_width
    if span < patch_width:
        raise ValueError(
            f"{length} fbank frames cannot make {num_segments} segments of at least one "
            f"{patch_width}-frame patch: lower num_segments or raise fbank target_frames"
        )
    starts = [i * length // num_segments for i in range(num_segments)]
    chunks = torch.stack([audio[..., s : s + span] for s in starts], dim=1)
    if video.ndim == 4:
        video = video[:, :, None]
    count = video.shape[2]
    index = ((torch.arange(num_segments) + 0.5) * count / num_segments).long()
    frames = video[:, :, index.to(video.device)].transpose(1, 2)  # [B, T, 3, H, W]
    return chunks.reshape(b * num_segments, 1, mels, span), frames.flatten(0, 1)
