"""A quick linear probe on frozen pooled embeddings: the demo's and the ablations' yardstick.

Embeddings are extracted once, standardised with training statistics, and a multinomial logistic
regression is fit full-batch with L-BFGS, so the probe's result depends on the features, not on
an optimiser schedule. :func:`multilabel_probe_map` is the multi-label counterpart (which
classes a frame shows), scored by mean average precision.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from avpretrain.models import AVMAE


@torch.no_grad()
def extract_embeddings(
    model: AVMAE, batches: Iterable[dict[str, Any]], device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled audio and video embeddings of every clip, concatenated.

    Args:
        model: an AVMAE (``model.encode(audio, video)`` returns ``audio_embedding`` and
            ``video_embedding``, each [B, D]).
        batches: batches with ``audio``, ``video`` and ``label`` [B].
        device: where the model runs; the batches are moved there.

    Returns:
        features [N, Da + Dv] and labels [N].
    """
    model.eval().to(device)
    feats, labels = [], []
    for batch in batches:
        out = model.encode(audio=batch["audio"].to(device), video=batch["video"].to(device))
        feats.append(torch.cat([out["audio_embedding"], out["video_embedding"]], dim=-1).cpu())
        labels.append(batch["label"].cpu())
    return torch.cat(feats), torch.cat(labels)


def linear_probe(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    num_classes: int,
    weight_decay: float = 1e-3,
    max_iter: int = 200,
) -> float:
    """Top-1 accuracy on the test set of a logistic regression fit on the training set.

    Args:
        train_x: [N, D] features.
        train_y: [N] class indices.
        test_x: [M, D] features.
        test_y: [M] class indices.
        num_classes: number of classes C.
        weight_decay: L2 penalty on the weights.
        max_iter: L-BFGS iterations.
    """
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    xtr, xte = (train_x - mean) / std, (test_x - mean) / std
    layer = torch.nn.Linear(xtr.shape[1], num_classes).double()
    xtr, xte = xtr.double(), xte.double()
    opt = torch.optim.LBFGS(layer.parameters(), max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(layer(xtr), train_y) + weight_decay * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (layer(xte).argmax(-1) == test_y).double().mean().item()


def multilabel_probe_map(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    steps: int = 300,
) -> float:
    """Test mAP of a multi-label logistic probe (Adam, full batch) fit on the training set.

    Features are standardised with training statistics; classes without a positive in the test
    set are left out of the mean (their average precision is undefined).

    Args:
        train_x: [N, D] features.
        train_y: [N, C] 0/1 targets.
        test_x: [M, D] features.
        test_y: [M, C] 0/1 targets.
        steps: Adam steps (lr 1e-2, weight decay 1e-4).
    """
    from torchmetrics.functional.classification import multilabel_average_precision

    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    xtr, xte = (train_x - mean) / std, (test_x - mean) / std
    probe = torch.nn.Linear(xtr.shape[1], train_y.shape[1])
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(steps):
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(probe(xtr), train_y.float()).backward()
        optimizer.step()
    with torch.no_grad():
        scores = probe(xte)
    keep = test_y.sum(0) > 0
    return float(
        multilabel_average_precision(scores[:, keep], test_y[:, keep].long(), int(keep.sum()))
    )
