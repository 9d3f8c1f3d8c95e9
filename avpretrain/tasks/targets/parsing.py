"""Video parsing targets for :class:`~avpretrain.data.loading.datamodule.AVDataModule` (``targets``).

:func:`parsing_targets` returns, for C classes (the data's ``num_classes``) and T one-second
segments (the data's ``num_frames_per_clip``, one frame per segment):

- ``weak`` [C] float: the video-level labels, the only training signal;
- ``audio_gt``, ``visual_gt`` [C, T] float 0/1: dense ground truth, used only for scoring;
- ``has_dense`` bool tensor: whether the clip carries dense labels (the LLP training split
  does not; its dense targets are zeros).

Two stored layouts are read:

- the synthetic world: ``synthetic.events`` = ``{"audio": [...], "visual": [...]}``, per second
  the sorted class ids heard / seen (``avpretrain.data.synthetic.clip.clip_meta``). The weak labels
  are the union of both, as LLP's video-level labels name events of either modality. Clips whose
  audio was swapped or shifted (``synthetic.corruption``) no longer match their events and are
  refused.
- LLP ingested from the ``avpretrain convert-llp`` manifest: ``annotations`` = ``{"weak":
  [...], "audio_segments": [[class, onset, offset], ...], "visual_segments": [...]}``; the rows
  become matrices as the official evaluation builds them
  (:func:`~avpretrain.metrics.parsing.segments_to_matrix`).

Errors (raised as ``ValueError``; the loader logs the clip and shard and skips it) name the clip.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from avpretrain.metrics.parsing import segments_to_matrix

_AUDIO_CORRUPTIONS = ("swap_audio", "shift_audio")


def _multi_hot(classes: list[int], num_classes: int, key: Any) -> Tensor:
    out = torch.zeros(num_classes)
    for c in classes:
        if not 0 <= int(c) < num_classes:
            raise ValueError(f"clip {key!r}: class {c} outside [0, {num_classes})")
        out[int(c)] = 1.0
    return out


def _synthetic(synthetic: dict[str, Any], num_classes: int, num_segments: int, key: Any) -> dict:
    if synthetic.get("corruption") in _AUDIO_CORRUPTIONS:
        raise ValueError(
            f"clip {key!r}: audio corrupted ({synthetic['corruption']}), its events no longer "
            f"describe the sound; write the world with --corrupt 0 for parsing"
        )
    dense = {}
    for name in ("audio", "visual"):
        per_second = synthetic["events"][name]
        if len(per_second) != num_segments:
            raise ValueError(
                f"clip {key!r} has {len(per_second)} one-second segments, the loader expects "
                f"{num_segments} (num_frames_per_clip)"
            )
        columns = [_multi_hot(classes, num_classes, key) for classes in per_second]
        dense[name] = torch.stack(columns, dim=1)  # [C, T]
    weak = ((dense["audio"] + dense["visual"]).sum(dim=1) > 0).float()
    return {"weak": weak, "audio_gt": dense["audio"], "visual_gt": dense["visual"]}


def _annotated(
    annotations: dict[str, Any], num_classes: int, num_segments: int, key: Any
) -> tuple[dict, bool]:
    if "weak" not in annotations:
        raise ValueError(f"clip {key!r}: 'annotations' lacks 'weak' (convert-llp writes it)")
    weak = _multi_hot(annotations["weak"], num_classes, key)
    has_dense = "audio_segments" in annotations and "visual_segments" in annotations
    dense = {}
    for name in ("audio", "visual"):
        rows = annotations.get(f"{name}_segments") or []
        try:
            matrix = segments_to_matrix(rows, num_classes, num_segments)
        except (ValueError, TypeError) as err:
            raise ValueError(f"clip {key!r}: bad {name}_segments: {err}") from err
        dense[name] = torch.from_numpy(matrix).float()
    return {"weak": weak, "audio_gt": dense["audio"], "visual_gt": dense["visual"]}, has_dense


def parsing_targets(sample: dict[str, Any], meta: dict[str, Any], opts: Any) -> dict[str, Tensor]:
    """Weak labels and dense audio / visual ground truth of one clip (module docstring).

    Args:
        sample: the raw shard sample (only its ``__key__`` is used, for errors).
        meta: the clip's parsed JSON.
        opts: the loader's ``SampleOptions``: ``num_classes`` is C, ``num_frames_per_clip`` T;
            ``train`` False (evaluation) requires dense labels.

    Returns:
        ``weak`` [C], ``audio_gt`` [C, T], ``visual_gt`` [C, T] (float 0/1) and ``has_dense``
        (0-dim bool).

    Raises:
        ValueError: no parsing labels, a class out of range, a segment count other than T, or
            an evaluation clip without dense labels.
    """
    key = sample.get("__key__")
    num_classes, num_segments = opts.num_classes, opts.num_frames_per_clip
    if num_classes is None:
        raise ValueError("parsing targets need the data's num_classes")
    annotations = meta.get("annotations")
    synthetic = meta.get("synthetic")
    if isinstance(annotations, dict) and "weak" in annotations:
        out, has_dense = _annotated(annotations, num_classes, num_segments, key)
    elif isinstance(synthetic, dict) and "events" in synthetic:
        out, has_dense = _synthetic(synthetic, num_classes, num_segments, key), True
    else:
        raise ValueError(
            f"clip {key!r} has no parsing labels (JSON 'annotations.weak' from convert-llp or "
            f"'synthetic.events')"
        )
    if not opts.train and not has_dense:
        raise ValueError(
            f"clip {key!r} has no dense labels ('annotations.audio_segments' and "
            f"'visual_segments'): evaluation needs them; convert the split with --audio-csv "
            f"and --visual-csv"
        )
    return {**out, "has_dense": torch.tensor(has_dense)}
