"""The one weight-decay rule of pretraining and of every fine-tuning mode.

Weight decay shrinks the weight matrices of layers (linear, convolution, attention
projections). It is not applied to (MAE / BEiT practice):

- 1-D tensors and scalars: biases, norm scales, learned temperatures;
- any parameter named ``bias``;
- the parameters of normalisation layers (LayerNorm, GroupNorm, BatchNorm, RMSNorm, ...);
- tokens and tables registered as bare parameters, whose name ends in ``token`` or ``embed``:
  ``cls_token``, ``mask_token``, the modality tokens, ``pos_embed`` and the other position,
  role, modality or segment tables;
- ``nn.Embedding`` lookup tables (a rarely seen entry would only decay towards zero).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn

_NORMS = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
    nn.modules.batchnorm._NormBase,
)


def _exempt(module: nn.Module, name: str, param: nn.Parameter) -> bool:
    return (
        param.ndim <= 1
        or name == "bias"
        or isinstance(module, (*_NORMS, nn.Embedding))
        or name.endswith(("token", "embed"))
    )


def no_decay_names(model: nn.Module) -> set[str]:
    """Qualified names of the parameters of ``model`` that get no weight decay (module doc)."""
    out = set()
    for prefix, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if _exempt(module, name, param):
                out.add(f"{prefix}.{name}" if prefix else name)
    return out


def decayed_parameters(model: nn.Module) -> set[int]:
    """``id`` of every parameter of ``model`` that gets weight decay (trainable or not)."""
    exempt = no_decay_names(model)
    return {id(p) for name, p in model.named_parameters() if name not in exempt}


def split_by_decay(
    params: Iterable[nn.Parameter], decayed: set[int], weight_decay: float, **options: Any
) -> list[dict[str, Any]]:
    """Optimiser groups of the trainable ``params``: decayed ones, then the rest at 0.

    Args:
        params: parameters of one optimiser group (e.g. one layer).
        decayed: ids from :func:`decayed_parameters` of the model they belong to.
        weight_decay: the decay of the decayed group.
        **options: further group options (``lr``), the same in both groups.

    Returns:
        Up to two groups; an empty one is left out.
    """
    trainable = [p for p in params if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) in decayed], "weight_decay": weight_decay},
        {"params": [p for p in trainable if id(p) not in decayed], "weight_decay": 0.0},
    ]
    return [{**g, **options} for g in groups if g["params"]]


def param_groups(model: nn.Module, weight_decay: float, **options: Any) -> list[dict[str, Any]]:
    """Optimiser groups of the trainable parameters of ``model`` under the one decay rule.

    Args:
        model: the module whose parameters are optimised.
        weight_decay: decay of the weight matrices; the exempt parameters get 0.
        **options: further group options (``lr``).

    Returns:
        Up to two groups (decayed, not decayed); an empty one is left out.
    """
    return split_by_decay(model.parameters(), decayed_parameters(model), weight_decay, **options)
