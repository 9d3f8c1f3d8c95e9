"""Classification heads on pooled embeddings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import torch
from torch import Tensor, nn


class LinearHead(nn.Module):
    """BatchNorm-free linear classifier, optionally behind a LayerNorm.

    MAE's linear probe uses a parameter-free BatchNorm; a LayerNorm keeps it batch-size independent.

    The input width is bound by the task once the encoders are known (:meth:`bind`), so a recipe
    only states the number of classes.

    Args:
        num_classes: output logits C.
        in_dim: input width; None until :meth:`bind`.
        norm: LayerNorm the input first.
        dropout: dropout before the linear layer.
    """

    def __init__(
        self, num_classes: int, in_dim: int | None = None, norm: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.norm_input, self.dropout_p = norm, dropout
        self.layers: nn.Sequential | None = None
        if in_dim is not None:
            self.bind(in_dim)

    def bind(self, in_dim: int) -> None:
        """Build the layers for inputs of width ``in_dim`` (no-op if built for that width)."""
        if self.layers is not None:
            if self.layers[-1].in_features != in_dim:
                raise ValueError(
                    f"head built for width {self.layers[-1].in_features}, not {in_dim}"
                )
            return
        linear = nn.Linear(in_dim, self.num_classes)
        nn.init.trunc_normal_(linear.weight, std=0.01)  # MAE's probe init
        nn.init.zeros_(linear.bias)
        norm = nn.LayerNorm(in_dim) if self.norm_input else nn.Identity()
        self.layers = nn.Sequential(norm, nn.Dropout(self.dropout_p), linear)

    def load_linear(self, weights: Mapping[str, Tensor]) -> None:
        """Start from a pretrained classifier: ``{"weight": [C, D], "bias": [C]}``.

        E.g. the ``classifier`` a fine-tuned checkpoint's import offers
        (:class:`avpretrain.models.weights.ImportReport`). Binds the head to width D.

        Raises:
            ValueError: C differs from ``num_classes``, or the head was bound to another width.
        """
        weight = weights["weight"]
        if weight.shape[0] != self.num_classes:
            raise ValueError(
                f"classifier has {weight.shape[0]} classes, the head {self.num_classes}"
            )
        self.bind(weight.shape[1])
        assert self.layers is not None  # built by bind()
        linear = cast(nn.Linear, self.layers[-1])
        with torch.no_grad():
            linear.weight.copy_(weight)
            if "bias" in weights:
                linear.bias.copy_(weights["bias"])
            else:
                linear.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """``x`` [B, D] -> logits [B, C]."""
        if self.layers is None:
            raise RuntimeError("LinearHead.bind(in_dim) was not called")
        return self.layers(x)
