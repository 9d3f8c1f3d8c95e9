"""The ST-AVQA head: shapes, grounding weights, matching pairs, question encoding, binding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avpretrain.heads.music_avqa import AVQAHead, TemporalGrounding
from avpretrain.heads.text import TextEncoder

QUESTIONS = ["How many?", "Where is the red circle?", "How many?", "Is it loud?", "Which first?"]


def _head(num_answers: int = 7) -> AVQAHead:
    torch.manual_seed(0)
    head = AVQAHead(dim=16, text_encoder=TextEncoder(width=16, depth=1, max_length=32))
    head.bind(audio_dim=12, video_dim=10, num_answers=num_answers)
    return head.eval()


def _inputs(b: int = 3, t: int = 2, n: int = 4):
    return torch.randn(b, t, 12), torch.randn(b, t, n, 10), torch.tensor([0, 1, 1, 2, 0])


def test_shapes_and_weights_sum_to_one():
    head = _head()
    audio, video, clips = _inputs()
    out = head(audio, video, QUESTIONS, clips)
    assert out["logits"].shape == (5, 7)
    assert out["spatial"].shape == (5, 2, 4)
    assert out["temporal_audio"].shape == out["temporal_video"].shape == (5, 2)
    for name in ("spatial", "temporal_audio", "temporal_video"):
        sums = out[name].sum(-1)
        torch.testing.assert_close(sums, torch.ones_like(sums))
        assert bool((out[name] >= 0).all())
    assert "match_logits" not in out


def test_spatial_grounding_is_softmax_of_cosine_scores():
    head = _head()
    query, patches = torch.randn(2, 3, 16), torch.randn(2, 3, 5, 16)
    feature, weights = head.spatial_grounding(query, patches)
    q, t = 1, 2  # one (question, segment) by hand
    cos = F.cosine_similarity(patches[q, t], query[q, t][None], dim=-1)  # [N]
    expected = torch.exp(cos) / torch.exp(cos).sum()
    torch.testing.assert_close(weights[q, t], expected)
    head.spatial_temperature = 0.1
    sharp = head.spatial_grounding(query, patches)[1][q, t]
    torch.testing.assert_close(sharp, torch.exp(cos / 0.1) / torch.exp(cos / 0.1).sum())
    attended = (expected[:, None] * F.normalize(patches[q, t], dim=-1)).sum(0)
    both = torch.cat([patches[q, t].mean(0), attended])
    torch.testing.assert_close(feature[q, t], head.fc_gl(torch.tanh(both)))


def test_temporal_grounding_is_uniform_over_equal_segments():
    grounding = TemporalGrounding(dim=8, num_heads=2, dropout=0.0).eval()
    segments = torch.randn(3, 1, 8).expand(3, 4, 8)  # 4 identical segments
    _, weights = grounding(torch.randn(3, 8), segments)
    torch.testing.assert_close(weights, torch.full((3, 4), 0.25))


def test_matching_pairs_own_frames_against_the_next_clip():
    head = _head()
    audio, video, clips = _inputs()
    out = head(audio, video, QUESTIONS, clips, with_match=True)
    assert out["match_logits"].shape == (2 * 5 * 2, 2)
    labels = out["match_labels"]
    assert labels[:10].eq(1).all() and labels[10:].eq(0).all()
    single = head(audio[:1], video[:1], QUESTIONS[:2], torch.tensor([0, 0]), with_match=True)
    assert "match_logits" not in single  # no other clip to draw negatives from


def test_question_features_ignore_repeats_and_padding():
    head = _head()
    direct = head.fc_q(head.text_encoder.encode_text(QUESTIONS))  # full max_length padding
    torch.testing.assert_close(head.encode_question(QUESTIONS), direct, rtol=1e-5, atol=1e-5)


def test_logits_depend_on_the_question():
    head = _head()
    audio, video, _ = _inputs()
    clips = torch.tensor([0, 0])
    logits = head(audio, video, ["How many?", "Where is the red circle?"], clips)["logits"]
    assert not torch.allclose(logits[0], logits[1])


def test_bind_checks_sizes():
    head = _head()
    head.bind(12, 10, 7)  # same sizes: no-op
    with pytest.raises(ValueError, match="head built for"):
        head.bind(12, 10, 8)
    unbound = AVQAHead(dim=8, text_encoder=TextEncoder(width=8, depth=1, max_length=16))
    with pytest.raises(RuntimeError, match="bind"):
        unbound(torch.zeros(1, 1, 4), torch.zeros(1, 1, 2, 4), ["q"], torch.tensor([0]))
