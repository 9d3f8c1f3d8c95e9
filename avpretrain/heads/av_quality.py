"""Quality-assessment heads: MOS regression, direct or over five opinion levels.

Both map pooled features [B, D] to K scores on the 0-100 scale (``scores``), one per target
(``overall``, ``video``, ``audio``); the task trains them on MOS rescaled to 0-100.

- :class:`MOSRegressionHead`: one output per target, the MOS divided by 100 (``[0, 1]``);
  ``activation="sigmoid"`` bounds it, ``"linear"`` does not (trained with MSE).
- :class:`MOSLevelHead`: five logits per target for the ACR levels bad .. excellent, each
  20 points wide on 0-100 (:func:`avpretrain.av_quality.opinion.to_level`). The predicted score is
  the expected level centre, ``sum_k p_k * (20 k + 10)``, k = 0..4 (centres 10, 30, 50, 70, 90),
  so it is continuous and ranks clips by more than their argmax level.

Clips: :func:`temporal_pool` turns per-step video features [B, T, D] (one per frame, or per
tubelet step) into the pooled input of a head, with ``mean_diff`` adding the mean absolute
change between consecutive steps, the evidence of stutter (held frames change nothing) and
shake (everything moves) that a mean over time averages away.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from avpretrain.arguments import check_choice
from avpretrain.av_quality.levels import LEVEL_WIDTH

NUM_LEVELS = 5
Activation = Literal["sigmoid", "linear"]
TemporalPooling = Literal["mean", "mean_diff"]  # the keys of TEMPORAL_POOLING
TEMPORAL_POOLING = {"mean": 1, "mean_diff": 2}  # name -> output width in units of D


def temporal_pool(steps: Tensor, mode: TemporalPooling = "mean") -> Tensor:
    """Pool per-step features over time.

    Args:
        steps: [B, T, D] features of T consecutive frames (or tubelet steps).
        mode: ``mean`` -> [B, D] mean over T; ``mean_diff`` -> [B, 2D], the mean over T
            followed by ``mean_t |x_t - x_(t-1)|`` (zeros when T = 1).

    Returns:
        [B, D * TEMPORAL_POOLING[mode]].
    """
    check_choice("temporal pooling", mode, TemporalPooling)
    if steps.ndim != 3:
        raise ValueError(f"temporal_pool: expected [B, T, D] features, got {tuple(steps.shape)}")
    mean = steps.mean(dim=1)
    if mode == "mean":
        return mean
    if steps.shape[1] == 1:
        return torch.cat([mean, torch.zeros_like(mean)], dim=-1)
    return torch.cat([mean, steps.diff(dim=1).abs().mean(dim=1)], dim=-1)


def level_centres() -> Tensor:
    """[5] centres of the five levels on 0-100: ``20 k + 10``."""
    return LEVEL_WIDTH * torch.arange(NUM_LEVELS, dtype=torch.float32) + LEVEL_WIDTH / 2


def expected_score(logits: Tensor) -> Tensor:
    """Expected level centre under the softmax: ``logits`` [..., 5] -> [...] on 0-100."""
    probs = logits.float().softmax(-1)
    return probs @ level_centres().to(probs.device)


class _PooledHead(nn.Module):
    """LayerNorm, dropout, linear on [B, D] features; widths bound by the task (:meth:`bind`)."""

    outputs_per_target = 1

    def __init__(
        self,
        in_dim: int | None = None,
        num_targets: int = 1,
        norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm_input, self.dropout_p = norm, dropout
        self.num_targets = num_targets
        self.layers: nn.Sequential | None = None
        if in_dim is not None:
            self.bind(in_dim, num_targets)

    def bind(self, in_dim: int, num_targets: int | None = None) -> None:
        """Build the layers for ``in_dim`` features and ``num_targets`` scores.

        A no-op if already built for those.
        """
        k = self.num_targets if num_targets is None else num_targets
        out = k * self.outputs_per_target
        if self.layers is not None:
            linear = self.layers[-1]
            if (linear.in_features, linear.out_features) != (in_dim, out):
                raise ValueError(
                    f"head built for {linear.in_features} -> {linear.out_features}, not "
                    f"{in_dim} -> {out}"
                )
            return
        self.num_targets = k
        linear = nn.Linear(in_dim, out)
        nn.init.trunc_normal_(linear.weight, std=0.01)
        nn.init.zeros_(linear.bias)
        norm = nn.LayerNorm(in_dim) if self.norm_input else nn.Identity()
        self.layers = nn.Sequential(norm, nn.Dropout(self.dropout_p), linear)

    def _linear(self, x: Tensor) -> Tensor:
        if self.layers is None:
            raise RuntimeError(f"{type(self).__name__}.bind(in_dim) was not called")
        return self.layers(x)


class MOSRegressionHead(_PooledHead):
    """Direct regression of MOS / 100.

    Args:
        activation: ``sigmoid`` (outputs in (0, 1)) or ``linear``.
        in_dim, num_targets: feature width and K; bound by the task when None.
        norm: LayerNorm the input first.
        dropout: dropout before the linear layer.
    """

    kind = "regression"

    def __init__(
        self,
        activation: Activation = "sigmoid",
        in_dim: int | None = None,
        num_targets: int = 1,
        norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        check_choice("activation", activation, Activation)
        super().__init__(in_dim, num_targets, norm, dropout)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        """``x`` [B, D] -> [B, K] predicted MOS / 100."""
        out = self._linear(x)
        return torch.sigmoid(out) if self.activation == "sigmoid" else out

    def scores(self, out: Tensor) -> Tensor:
        """Forward output [B, K] -> scores [B, K] on 0-100."""
        return 100.0 * out.float()


class MOSLevelHead(_PooledHead):
    """Five-level softmax per target; the score is the expected level centre.

    Args:
        in_dim, num_targets: feature width and K; bound by the task when None.
        norm: LayerNorm the input first.
        dropout: dropout before the linear layer.
    """

    kind = "levels"
    outputs_per_target = NUM_LEVELS

    def forward(self, x: Tensor) -> Tensor:
        """``x`` [B, D] -> level logits [B, K, 5]."""
        return self._linear(x).unflatten(-1, (-1, NUM_LEVELS))

    def scores(self, out: Tensor) -> Tensor:
        """Level logits [B, K, 5] -> expected scores [B, K] on 0-100."""
        return expected_score(out)
