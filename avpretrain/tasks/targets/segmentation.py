"""Segmentation targets for :class:`~avpretrain.data.loading.datamodule.AVDataModule` (``targets``).

Each function returns ``{"mask": [S, S] float32, "video_id": str}``: the mask (1 = sounding
object) of the one frame the loader chose and the clip's ``video_id`` (its JSON), by which the
task groups frames into videos for AVSBench's per-video scores. The mask is transformed
exactly like the evaluation frame: the short side resized to ``frame_size`` (nearest-exact,
i.e. pixel centres, as PIL's nearest), then the centre crop (torchvision's rounding). Use
them with ``frame_augment: false``: a random crop or flip of the training frame would not be
applied to the mask.

Two sources:

- :func:`synth_mask_targets`, the synthetic world: ``gt.npz`` member ``masks`` [F, H, W] uint8
  (object index + 1) and the JSON's ``synthetic.objects``. The mask holds the on-screen objects
  *heard at the frame's time* (``sounding`` and ``audio_on`` for the frame's second, the objects
  the world draws marked), as AVSBench annotates the objects producing sound in each frame.
- :func:`png_mask_targets`, real AVSBench data: one PNG per stored frame, member ``mNN.png``
  next to ``fNN.jpg`` (same index); any nonzero pixel is foreground (AVSBench's masks are
  0/255). Layout a converter must produce (plain ``write_shard`` samples, ``index.json``)::

      <key>.f00.jpg [.f01.jpg ...]  the annotated frames (AVSBench: one per second)
      <key>.m00.png [.m01.png ...]  their masks, same size as the frames
      <key>.flac                    the clip's audio
      <key>.json                    make_meta(...) record; video_id = the AVSBench video

  and the recipe lists the mask members in ``extra_members`` (``[m00.png, ..., m04.png]``).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from PIL import Image

from avpretrain.data.loading.samples import single_frame_index
from avpretrain.data.loading.video import mask_transform
from avpretrain.data.schema import GT_EXT
from avpretrain.data.synthetic.scene import second_of


def _member(sample: dict[str, Any], name: str) -> bytes:
    if name not in sample:
        raise ValueError(
            f"{sample.get('__key__')} ({sample.get('__url__')}): no {name} member; list it in "
            f"the data module's extra_members"
        )
    return sample[name]


def _video_id(sample: dict[str, Any], meta: dict[str, Any]) -> str:
    if not meta.get("video_id"):
        raise ValueError(
            f"{sample.get('__key__')} ({sample.get('__url__')}): its JSON has no video_id, which "
            f"groups the frames of a video for the per-video scores"
        )
    return str(meta["video_id"])


def synth_mask_targets(sample: dict[str, Any], meta: dict[str, Any], opts: Any) -> dict[str, Any]:
    """Mask of the on-screen objects heard at the chosen frame, from the synthetic ``gt.npz``.

    Args:
        sample: raw members with ``gt.npz`` and ``__frame_indices__``.
        meta: the clip's JSON (``synthetic.objects``, ``frame_times``).
        opts: :class:`~avpretrain.data.loading.samples.SampleOptions` (its ``frame_size``).

    Returns:
        ``{"mask": [S, S] float32, "video_id": str}``.
    """
    idx = single_frame_index(sample, "segmentation")
    with np.load(io.BytesIO(_member(sample, GT_EXT))) as gt:
        masks = gt["masks"]
    objects = meta["synthetic"]["objects"]
    t = meta["frame_times"][idx]
    heard = [
        i + 1
        for i, o in enumerate(objects)
        if o["sounding"] and o["on_screen"] and o["audio_on"][second_of(t, len(o["audio_on"]))]
    ]
    mask = torch.from_numpy(np.isin(masks[idx], heard))
    return {"mask": mask_transform(mask, opts.frame_size), "video_id": _video_id(sample, meta)}


def png_mask_targets(sample: dict[str, Any], meta: dict[str, Any], opts: Any) -> dict[str, Any]:
    """Mask of the chosen frame from its PNG member ``mNN.png`` (real AVSBench shards).

    Args:
        sample: raw members with ``mNN.png`` for the chosen frame, ``__frames__`` and
            ``__frame_indices__``.
        meta: the clip's JSON (its ``video_id``: the AVSBench video).
        opts: :class:`~avpretrain.data.loading.samples.SampleOptions` (its ``frame_size``).

    Returns:
        ``{"mask": [S, S] float32, "video_id": str}``.
    """
    key = sample.get("__key__")
    name = f"m{single_frame_index(sample, 'segmentation'):02d}.png"
    try:
        with Image.open(io.BytesIO(_member(sample, name))) as img:
            # palette PNGs: the index is the label (a palette colour may be black)
            mask = np.asarray(img if img.mode == "P" else img.convert("L"))
        with Image.open(io.BytesIO(sample["__frames__"][0])) as frame:  # reads the header only
            frame_hw = (frame.height, frame.width)
    except OSError as err:
        raise ValueError(f"{key}: could not decode {name} or its frame: {err}") from err
    if mask.shape != frame_hw:
        raise ValueError(f"{key}: {name} is {mask.shape} pixels, its frame {frame_hw}")
    mask_t = mask_transform(torch.from_numpy(mask.copy()), opts.frame_size)
    return {"mask": mask_t, "video_id": _video_id(sample, meta)}
