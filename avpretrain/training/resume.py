"""A clear error when ``--ckpt_path`` names a file Lightning cannot resume from.

Lightning reads any file given as ``ckpt_path`` and fails deep inside with
``KeyError: 'pytorch-lightning_version'`` when it is not a Lightning checkpoint, for example the
encoder file that ``avpretrain export`` writes. This check looks at the file first.
"""

from __future__ import annotations

from pathlib import Path

import torch

from avpretrain.models.encoder_file import FORMAT

LIGHTNING_KEY = "pytorch-lightning_version"


def check_ckpt_path(ckpt_path: str | Path | None) -> None:
    """Refuse a local ``ckpt_path`` that is not a Lightning checkpoint.

    ``None``, Lightning's names (``last``, ``best``, ``hpc``, ``registry``) and remote URLs are
    left to Lightning.

    Raises:
        ValueError: naming the file and what to use instead.
    """
    if ckpt_path is None or "://" in str(ckpt_path) or not Path(ckpt_path).is_file():
        return
    try:  # mmap: only the small top-level dict is read, not the weights
        ckpt = torch.load(ckpt_path, map_location="cpu", mmap=True, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ValueError(f"--ckpt_path {ckpt_path}: not a readable checkpoint: {err}") from err
    if isinstance(ckpt, dict) and ckpt.get("format") == FORMAT:
        raise ValueError(
            f"--ckpt_path {ckpt_path} is an encoder file from `avpretrain export`, not a training "
            f"checkpoint: --ckpt_path only resumes a run from its Lightning checkpoint "
            f"(e.g. last.ckpt). To start a task from these encoders use the encoders option: "
            f"--model.init_args.encoders {ckpt_path}"
        )
    if not isinstance(ckpt, dict) or LIGHTNING_KEY not in ckpt:
        raise ValueError(
            f"--ckpt_path {ckpt_path}: not a Lightning checkpoint (no {LIGHTNING_KEY!r}); "
            f"--ckpt_path resumes from a checkpoint that `fit` wrote (e.g. last.ckpt); external "
            f"weights go through the model's import_weights or encoders option"
        )
