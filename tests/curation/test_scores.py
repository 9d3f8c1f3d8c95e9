"""Alignment scores: the normalised cosine and the temporal formula worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from avpretrain.curation.scores import (
    ClipInput,
    ScoreModels,
    audio_segments,
    looped,
    normalized_cosine,
    pairwise_normalized_cosine,
    score_clips,
    temporal_score,
)


def test_normalized_cosine_by_hand() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [3.0, 4.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 5.0], [-1.0, 0.0], [4.0, 3.0]])
    # cos = 1, 0, -1, 24/25 -> (cos + 1) / 2
    expected = torch.tensor([1.0, 0.5, 0.0, (24 / 25 + 1) / 2])
    torch.testing.assert_close(normalized_cosine(a, b), expected)


def test_pairwise_matches_rowwise() -> None:
    a, b = torch.randn(3, 5), torch.randn(4, 5)
    m = pairwise_normalized_cosine(a, b)
    assert m.shape == (3, 4)
    torch.testing.assert_close(m[2, 1], normalized_cosine(a[2:3], b[1:2])[0])
    # 45 degrees by hand
    m = pairwise_normalized_cosine(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]))
    assert m.item() == pytest.approx((math.sqrt(0.5) + 1) / 2)


def test_temporal_score_by_hand() -> None:
    sim = torch.tensor([[0.9, 0.3, 0.5], [0.2, 0.7, 0.1], [0.4, 0.6, 0.8]])
    diag, off = (0.9 + 0.7 + 0.8) / 3, (0.3 + 0.5 + 0.2 + 0.1 + 0.4 + 0.6) / 6
    assert temporal_score(sim) == pytest.approx((1 + diag - off) / 2)
    assert temporal_score(torch.full((4, 4), 0.6)) == pytest.approx(0.5)  # timing irrelevant
    assert temporal_score(1 - torch.eye(3)) == pytest.approx(0.0)  # every frame off its sound
    assert temporal_score(torch.ones(1, 1)) is None


def test_audio_segments_centred_and_clamped() -> None:
    sr = 10
    wave = np.arange(30, dtype=np.float32)  # 3 s
    seg = audio_segments(wave, sr, [0.1, 1.5, 2.9])
    assert seg.shape == (3, 10)
    assert seg[0, 0] == 0 and seg[1, 0] == 10 and seg[2, -1] == 29  # edges moved inside
    short = audio_segments(np.ones(4, np.float32), sr, [0.2])
    assert short.shape == (1, 10) and short[0, 4:].sum() == 0


def test_looped_segments_repeat_to_the_clip_length() -> None:
    seg = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    np.testing.assert_array_equal(looped(seg, 7), [[1, 2, 3, 1, 2, 3, 1], [4, 5, 6, 4, 5, 6, 4]])
    assert looped(seg, 2) is seg  # a clip no longer than a segment: unchanged


class _ToyEmbedder:
    """Embeds audio by its loudness per segment and frames by their brightness, so a clip whose
    loud moments coincide with bright frames is temporally aligned."""

    name = "toy"
    modalities = frozenset({"audio", "frames"})

    def embed_audio(self, waveforms, sample_rate):
        level = torch.stack([torch.as_tensor(w).abs().mean() for w in waveforms])
        return torch.stack([level - 0.5, torch.full_like(level, 0.1)], dim=1)

    def embed_frames(self, frames):
        level = frames.float().mean(dim=(1, 2, 3)) / 255.0
        return torch.stack([level - 0.5, torch.full_like(level, 0.1)], dim=1)

    def embed_text(self, texts):
        raise NotImplementedError


def _clip(key: str, loud: list[int], bright: list[int], sr: int = 100) -> ClipInput:
    wave = np.concatenate([np.full(sr, float(v), np.float32) for v in loud])
    frames = torch.stack([torch.full((3, 8, 8), 255 * v, dtype=torch.uint8) for v in bright])
    times = [i + 0.5 for i in range(len(bright))]
    return ClipInput(key, wave, sr, frames, times, caption="a caption")


def test_score_clips_temporal_detects_shift(caplog: pytest.LogCaptureFixture) -> None:
    pattern = [1, 0, 1, 0]
    synced = _clip("a", pattern, pattern)
    shifted = _clip("b", pattern[1:] + pattern[:1], pattern)
    skipped: set[str] = set()
    scores = score_clips([synced, shifted], ScoreModels(audio_visual=_ToyEmbedder()), skipped)
    assert scores[0]["temporal"] > 0.5 > scores[1]["temporal"]
    assert 0.0 <= scores[0]["audio_visual"] <= 1.0
    # language pairs have no embedder: None, reported once
    assert scores[0]["text_audio"] is None and {"text_audio", "text_visual"} <= skipped
    assert "text_audio" in caplog.text
