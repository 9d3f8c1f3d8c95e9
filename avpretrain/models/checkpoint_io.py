"""Reading external checkpoints: torch or safetensors files, unwrapped to a flat state dict."""

from __future__ import annotations

import argparse
import logging
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

log = logging.getLogger("avpretrain.weights")

CONTAINER_KEYS = ("model", "state_dict", "module")
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")
MAX_LISTED = 30


def listing(names: list[str]) -> str:
    """``names`` as ``[a, b, ..., and N more]``, at most ``MAX_LISTED`` of them shown."""
    shown = ", ".join(names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return f"[{shown}{f', ... and {more} more' if more > 0 else ''}]"


def load_checkpoint(path: str | Path, trusted: bool = False) -> dict[str, Tensor]:
    """Read a state dict from a ``.safetensors`` file or a ``torch.save`` file, on the CPU.

    Containers (``{"model": ...}``, ``{"state_dict": ...}``, ``{"module": ...}``, nested) are
    unwrapped. Pickles load with ``weights_only=True`` (``argparse.Namespace``, which MAE and
    AudioMAE checkpoints carry as ``args``, is allowed).

    Args:
        path: checkpoint file.
        trusted: fall back to a full unpickle (arbitrary code execution) when weights-only
            loading refuses the file; only for files from a trusted source.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable, or not a mapping of names to tensors (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file  # installed with timm

        try:
            obj = load_file(str(path), device="cpu")
        except Exception as err:
            raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
    else:
        obj = _torch_load(path, trusted)
    return unwrap_state(obj, str(path))


def _torch_load(path: Path, trusted: bool) -> object:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise ValueError(f"{path}: not a PyTorch checkpoint ({err})") from err
        if not trusted:
            first = str(err).strip().splitlines()[-1][:300]
            raise ValueError(
                f"{path}: holds objects that weights-only loading refuses ({first}); pass "
                "trusted=True to unpickle it fully, only for a file from a trusted source"
            ) from err
    except Exception as err:
        raise ValueError(f"{path}: not a PyTorch checkpoint ({type(err).__name__}: {err})") from err
    log.warning("%s: weights-only loading refused it; unpickling fully (trusted=True)", path)
    return torch.load(path, map_location="cpu", weights_only=False)


def unwrap_state(obj: object, source: str) -> dict[str, Tensor]:
    """The flat ``name -> tensor`` dict inside a module, a state dict or a checkpoint container."""
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{source}: not a state dict (found {type(obj).__name__} {obj!r:.80})")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise ValueError(
            f"{source}: not a state dict; entries that are not named tensors: {listing(bad)}"
        )
    return dict(obj)


def strip_prefixes(
    state: Mapping[str, Tensor], prefixes: tuple[str, ...] = WRAPPER_PREFIXES
) -> dict[str, Tensor]:
    """Remove wrapper prefixes (DDP ``module.``, ``model.``, ``torch.compile``'s ``_orig_mod.``).

    Prefixes are stripped repeatedly, so ``module._orig_mod.blocks.0...`` becomes ``blocks.0...``.

    Raises:
        ValueError: two keys collapse to the same name.
    """
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        name = key
        while (hit := next((p for p in prefixes if name.startswith(p)), None)) is not None:
            name = name[len(hit) :]
        if name in out:
            raise ValueError(f"keys collide after stripping prefixes {prefixes}: {name!r}")
        out[name] = value
    return out
