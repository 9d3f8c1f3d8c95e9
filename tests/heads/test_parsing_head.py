"""HAN + MMIL parsing head: shapes, pooling worked by hand, time equivariance, the loss."""

from __future__ import annotations

import math

import pytest
import torch

from avpretrain.heads.parsing import PROB_EPS, HANLayer, ParsingHead, mmil_pool, parsing_loss


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_head_shapes_and_probabilities():
    torch.manual_seed(0)
    head = ParsingHead(num_classes=3, dim=16, num_heads=2, ffn_dim=32)
    head.bind(8, 12)
    out = head(torch.randn(2, 5, 8), torch.randn(2, 5, 12))
    assert out["frame_prob"].shape == (2, 5, 2, 3)
    for key in ("global_prob", "audio_prob", "visual_prob"):
        assert out[key].shape == (2, 3)
    for value in out.values():
        assert value.min() >= 0 and value.max() <= 1


def test_bind_checks_widths():
    head = ParsingHead(num_classes=2, dim=8, audio_dim=4, video_dim=6)
    head.bind(4, 6)  # same widths: no-op
    with pytest.raises(ValueError, match="widths"):
        head.bind(4, 7)
    with pytest.raises(RuntimeError, match="bind"):
        ParsingHead(num_classes=2, dim=8)(torch.randn(1, 2, 4), torch.randn(1, 2, 6))


def test_mmil_pool_worked_by_hand():
    """T = 2, C = 1. Probabilities p[t, m], time attention a[t, m] (softmax over t per m),
    modality attention w[t, m] (softmax over m per t)."""
    p = [[0.8, 0.4], [0.2, 0.6]]  # segment t, modality m (audio, visual)
    frame = torch.tensor([[[_logit(v)] for v in row] for row in p])[None]  # [1, 2, 2, 1]
    # time logits: audio ln 3 vs 0 -> a[:, audio] = (3/4, 1/4); visual equal -> (1/2, 1/2)
    time = torch.tensor([[[math.log(3)], [0.0]], [[0.0], [0.0]]])[None]
    # modality logits: t=0 equal -> (1/2, 1/2); t=1 visual ln 4 -> (1/5, 4/5)
    modality = torch.tensor([[[0.0], [0.0]], [[0.0], [math.log(4)]]])[None]
    out = mmil_pool(frame, time, modality)
    audio = 0.75 * 0.8 + 0.25 * 0.2  # sum_t a[t, audio] p[t, audio] = 0.65
    visual = 0.5 * 0.4 + 0.5 * 0.6  # 0.5
    video = 0.75 * 0.8 * 0.5 + 0.5 * 0.4 * 0.5 + 0.25 * 0.2 * 0.2 + 0.5 * 0.6 * 0.8  # 0.65
    torch.testing.assert_close(out["audio_prob"], torch.tensor([[audio]]))
    torch.testing.assert_close(out["visual_prob"], torch.tensor([[visual]]))
    torch.testing.assert_close(out["global_prob"], torch.tensor([[video]]))
    torch.testing.assert_close(out["frame_prob"][0, :, :, 0], torch.tensor(p))


def test_mmil_pool_weights_can_sum_past_one_and_are_clamped():
    """Audio attends to t=0, visual to t=1, and each segment's modality attention picks the
    attended one: both weights are ~1, so the unclamped video probability would be ~2 p."""
    big = 30.0
    frame = torch.full((1, 2, 2, 1), _logit(0.9))
    time = torch.tensor([[[big], [0.0]], [[0.0], [big]]])[None]
    modality = torch.tensor([[[big], [0.0]], [[0.0], [big]]])[None]
    out = mmil_pool(frame, time, modality)
    assert out["global_prob"].item() == pytest.approx(1 - PROB_EPS)
    assert out["audio_prob"].item() == pytest.approx(0.9, abs=1e-5)


def test_han_is_time_equivariant_and_uses_the_other_modality():
    torch.manual_seed(0)
    layer = HANLayer(dim=8, num_heads=2, ffn_dim=16, dropout=0.0).eval()
    a, v = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    perm = torch.tensor([2, 0, 3, 1])
    out = layer(a, v)
    torch.testing.assert_close(layer(a[:, perm], v[:, perm]), out[:, perm])
    assert not torch.allclose(layer(a, torch.randn(1, 4, 8)), out)


def test_parsing_loss_matches_bce_formula():
    out = {
        "global_prob": torch.tensor([[0.7, 0.2]]),
        "audio_prob": torch.tensor([[0.6, 0.1]]),
        "visual_prob": torch.tensor([[0.3, 0.4]]),
    }
    weak = torch.tensor([[1.0, 0.0]])

    def bce(p, y):
        return (
            -sum(
                y_ * math.log(p_) + (1 - y_) * math.log(1 - p_) for p_, y_ in zip(p, y, strict=True)
            )
            / 2
        )

    video = bce([0.7, 0.2], [1, 0])
    audio = bce([0.6, 0.1], [1, 0])
    visual = bce([0.3, 0.4], [0.95, 0.05])  # 0.9 * weak + 0.1 * 0.5
    losses = parsing_loss(out, weak, modality_weight=1.0, visual_smoothing=0.1)
    assert losses["loss_video"].item() == pytest.approx(video, rel=1e-5)
    assert losses["loss_visual"].item() == pytest.approx(visual, rel=1e-5)
    assert losses["loss"].item() == pytest.approx(video + audio + visual, rel=1e-5)
    only_video = parsing_loss(out, weak, modality_weight=0.0)
    assert set(only_video) == {"loss", "loss_video"}
    assert only_video["loss"].item() == pytest.approx(video, rel=1e-5)
