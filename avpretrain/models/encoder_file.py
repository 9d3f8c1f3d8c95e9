"""The encoder file: pretrained encoders in one file the downstream tasks load.

The file holds the AV-MAE's constructor arguments and the weights of everything but the
decoders (encoders, fusion layers, modality tokens)::

    {"format": "avpretrain-encoders", "version": 1, "config": {...}, "state_dict": {...}}

Written by ``avpretrain export`` (:mod:`avpretrain.export`), by the demo and by the ablations;
read by every task's backbone and by curation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from avpretrain.models.avmae import AVMAE
from avpretrain.models.finite import non_finite_tensors

FORMAT = "avpretrain-encoders"
VERSION = 1
DECODER_PREFIXES = ("audio_decoder.", "video_decoder.")


def encoder_state(model: AVMAE) -> dict[str, torch.Tensor]:
    """The model's weights without its decoders."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(DECODER_PREFIXES)}


def save_encoders(model: AVMAE, path: str | Path) -> Path:
    """Write the encoders of ``model`` to ``path`` atomically (temporary file, then rename).

    Raises:
        ValueError: a weight is NaN or infinite (nothing is written).
    """
    path = Path(path)
    state = encoder_state(model)
    bad = non_finite_tensors(state)
    if bad:
        raise ValueError(
            f"refusing to export non-finite weights (NaN or inf in {bad}): the training run "
            f"diverged; export an earlier checkpoint"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, "config": model.config}
    payload["state_dict"] = state
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_encoders(path: str | Path) -> AVMAE:
    """Rebuild the AV-MAE of an encoder file; its decoders stay at their initialisation.

    Raises:
        ValueError: the file is not an encoder export (e.g. a Lightning checkpoint: export it).
    """
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(
            f"{path}: not an avpretrain encoder file; make one with "
            "`avpretrain export --ckpt <checkpoint> --out <file>`"
        )
    model = AVMAE(**payload["config"])
    missing, unexpected = model.load_state_dict(payload["state_dict"], strict=False)
    missing = [k for k in missing if not k.startswith(DECODER_PREFIXES)]
    if missing or unexpected:
        raise ValueError(f"{path}: missing {missing}, unexpected {unexpected}")
    return model


def model_from_checkpoint(ckpt_path: str | Path) -> AVMAE:
    """The AV-MAE inside a pretraining checkpoint written by :class:`AVMAEPretrain`."""
    ckpt: dict[str, Any] = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    if "avmae_config" not in ckpt:
        raise ValueError(
            f"{ckpt_path}: no 'avmae_config': not an avpretrain pretraining checkpoint"
        )
    model = AVMAE(**ckpt["avmae_config"])
    state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    state = {k.removeprefix("_orig_mod."): v for k, v in state.items()}
    model.load_state_dict(state)
    return model
