"""The encoders a downstream task sits on: loading, freezing modes and layer-wise lr decay."""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

from avpretrain.arguments import check_choice, choices
from avpretrain.models import AVMAE
from avpretrain.models.encoder_file import load_encoders
from avpretrain.training.param_groups import decayed_parameters, split_by_decay

Mode = Literal["linear_probe", "partial", "finetune"]
MODES: tuple[str, ...] = choices(Mode)


def load_backbone(encoders: str | None, backbone: dict[str, Any] | None, seed: int = 0) -> AVMAE:
    """Pretrained encoders from an export file, or the same architecture at random init.

    Args:
        encoders: file written by ``avpretrain export``; None builds random encoders.
        backbone: AVMAE constructor arguments for random init (ignored when ``encoders`` is set).
        seed: seed of the random initialisation.

    The decoders are dropped: downstream tasks only encode.
    """
    if encoders is not None:
        model = load_encoders(encoders)
    else:
        if backbone is None:
            raise ValueError("give `encoders` (an exported file) or `backbone` (AVMAE arguments)")
        import torch

        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = AVMAE(**backbone)
    model.audio_decoder = None  # type: ignore[assignment]  # AVMAE declares them non-optional
    model.video_decoder = None  # type: ignore[assignment]
    return model


def encoder_layers(model: AVMAE) -> list[list[nn.Module]]:
    """Backbone modules from input to output, grouped by depth for layer-wise lr decay.

    Layer 0 holds the patch embeddings, tokens and positions; layer i the i-th block of each
    encoder; the last layers hold fusion blocks and final norms.
    """
    audio, video = model.audio_encoder, model.video_encoder
    layers: list[list[nn.Module]] = [[audio.patch_embed, video.patch_embed]]
    for i in range(max(len(audio.blocks), len(video.blocks))):
        layers.append([enc.blocks[i] for enc in (audio, video) if i < len(enc.blocks)])
    layers[-1] += [m for enc in (audio, video) for m in (enc.norm, enc.fc_norm) if m is not None]
    for block in model.fusion:
        layers.append([block])
    if hasattr(model, "fusion_norm"):
        layers[-1].append(model.fusion_norm)
    return layers


def _layer_params(model: AVMAE) -> list[list[nn.Parameter]]:
    layers = [[p for m in group for p in m.parameters()] for group in encoder_layers(model)]
    seen = {id(p) for group in layers for p in group}
    # tokens and position tables live on the encoders themselves: put them with the embeddings
    layers[0] += [p for p in model.parameters() if id(p) not in seen]
    return layers


def set_mode(model: AVMAE, mode: Mode, trainable_blocks: int = 2) -> None:
    """Freeze the backbone for ``mode``.

    ``linear_probe``: everything frozen. ``partial``: only the last ``trainable_blocks`` layers
    (see :func:`encoder_layers`) train. ``finetune``: everything trains.
    """
    check_choice("mode", mode, Mode)
    layers = _layer_params(model)
    trainable = {"linear_probe": 0, "partial": trainable_blocks, "finetune": len(layers)}[mode]
    for i, params in enumerate(layers):
        for p in params:
            p.requires_grad_(i >= len(layers) - trainable)
    for enc in (model.audio_encoder, model.video_encoder):
        enc.pos_embed.requires_grad_(False)  # fixed sin-cos tables stay fixed


def layer_decay_groups(
    model: AVMAE, lr: float, weight_decay: float, layer_decay: float
) -> list[dict[str, Any]]:
    """Optimiser groups of the trainable backbone parameters with layer-wise lr decay.

    Layer ``i`` of ``L`` gets ``lr * layer_decay ** (L - i)`` (BEiT / MAE fine-tuning), so the
    layers nearest the head move most. Weight decay follows the one rule of
    :mod:`avpretrain.training.param_groups` (none on biases, norms, tokens, position tables).
    """
    layers = _layer_params(model)
    decayed = decayed_parameters(model)
    groups = []
    for i, params in enumerate(layers):
        scale = layer_decay ** (len(layers) - i)
        groups += split_by_decay(params, decayed, weight_decay, lr=lr * scale)
    return groups
