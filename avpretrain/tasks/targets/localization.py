"""Localization targets for :class:`~avpretrain.data.loading.datamodule.AVDataModule` (``targets``).

Each function returns ``{"gt_map": [S, S] float32, "has_gt": bool tensor}`` for the one frame the
loader chose, in the coordinates of the evaluation frame (short side resized to ``frame_size``,
then the centre crop, torchvision's rounding). Use them with ``frame_augment: false``: a random
crop or flip of the training frame would not be applied to the map. ``has_gt`` is false when no
sounding object is in the (cropped) frame; the task then scores the sample as non-sounding.

- :func:`synth_localization_targets`, the synthetic world: ``gt.npz`` member ``masks``
  [F, H, W] uint8 (object index + 1) at the chosen frame, restricted to the objects with
  ``sounding`` and ``on_screen`` in the JSON's ``synthetic.objects``. Unlike segmentation's
  mask it ignores ``audio_on``: the audio input is the whole clip, so an object heard at any
  time in it is a source, as VGG-SS boxes the source in one frame of a 10 s clip. Resized
  nearest-exact (pixel centres, as PIL's nearest).
- :func:`vggss_box_targets` / :func:`flickr_box_targets`, real benchmarks: the clip JSON's
  ``annotations`` (written by ``avpretrain ingest`` from a manifest column) holds
  ``{"boxes": [[xmin, ymin, xmax, ymax], ...]}`` normalised to the stored frame's width and
  height (the frame the loader chooses in evaluation: store only the annotated one). The boxes
  are moved into the crop and drawn with
  :func:`~avpretrain.metrics.localization.vggss_gt_map` (binary union) or
  :func:`~avpretrain.metrics.localization.flickr_gt_map` (one box per annotator, summed, halved,
  clipped to 1). Clips without ``annotations`` (the unlabelled training set) get an empty map
  in training and are an error in evaluation.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from avpretrain.data.loading.samples import single_frame_index
from avpretrain.data.loading.video import mask_transform
from avpretrain.data.schema import GT_EXT
from avpretrain.metrics.localization import flickr_gt_map, vggss_gt_map


def resize_crop_geometry(width: int, height: int, size: int) -> tuple[float, float, int, int]:
    """Where the evaluation frame transform puts a frame's pixels.

    Torchvision's ``resize(img, [size])`` makes the short side ``size`` and the long side
    ``int(size * long / short)``; ``center_crop`` starts at ``int(round((new - size) / 2))``.

    Args:
        width: stored frame width W.
        height: stored frame height H.
        size: the loader's ``frame_size`` S.

    Returns:
        ``(new_w, new_h, left, top)``: resized size and crop offsets, in resized pixels.
    """
    if width < 1 or height < 1:
        raise ValueError(f"frame of {width} x {height} pixels")
    if width <= height:
        new_w, new_h = size, int(size * height / width)
    else:
        new_w, new_h = int(size * width / height), size
    return new_w, new_h, int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))


def boxes_to_crop(
    boxes: Sequence[Sequence[float]], width: int, height: int, size: int
) -> list[list[float]]:
    """Normalised boxes of a W x H frame -> normalised boxes of its ``size`` centre crop.

    Args:
        boxes: [xmin, ymin, xmax, ymax] in [0, 1] of the stored frame.
        width: stored frame width.
        height: stored frame height.
        size: the loader's ``frame_size``.

    Returns:
        The boxes relative to the crop (may leave [0, 1]; the map builders clip).
    """
    new_w, new_h, left, top = resize_crop_geometry(width, height, size)
    out = []
    for box in boxes:
        if len(box) != 4:
            raise ValueError(f"box {box} is not [xmin, ymin, xmax, ymax]")
        x0, y0, x1, y1 = (float(v) for v in box)
        out.append(
            [
                (x0 * new_w - left) / size,
                (y0 * new_h - top) / size,
                (x1 * new_w - left) / size,
                (y1 * new_h - top) / size,
            ]
        )
    return out


def _result(gt_map: Tensor) -> dict[str, Tensor]:
    return {"gt_map": gt_map, "has_gt": torch.tensor(bool(gt_map.sum() > 0))}


def synth_localization_targets(
    sample: dict[str, Any], meta: dict[str, Any], opts: Any
) -> dict[str, Tensor]:
    """Map of the sounding on-screen objects at the chosen frame, from the synthetic ``gt.npz``.

    Args:
        sample: raw members with ``gt.npz`` and ``__frame_indices__``.
        meta: the clip's JSON (``synthetic.objects``).
        opts: :class:`~avpretrain.data.loading.samples.SampleOptions` (its ``frame_size``).

    Returns:
        ``{"gt_map": [S, S] float32 0/1, "has_gt": bool}``.
    """
    idx = single_frame_index(sample, "localization")
    if GT_EXT not in sample:
        raise ValueError(
            f"{sample.get('__key__')} ({sample.get('__url__')}): no {GT_EXT} member; list it "
            f"in the data module's extra_members"
        )
    with np.load(io.BytesIO(sample[GT_EXT])) as gt:
        masks = gt["masks"]
    if not 0 <= idx < masks.shape[0]:
        raise ValueError(f"{sample.get('__key__')}: frame {idx} but {GT_EXT} has {len(masks)}")
    objects = meta["synthetic"]["objects"]
    sources = [i + 1 for i, o in enumerate(objects) if o["sounding"] and o["on_screen"]]
    mask = torch.from_numpy(np.isin(masks[idx], sources))
    return _result(mask_transform(mask, opts.frame_size))


def _box_targets(
    sample: dict[str, Any],
    meta: dict[str, Any],
    opts: Any,
    draw: Callable[[list[list[float]], int], np.ndarray],
) -> dict[str, Tensor]:
    key = sample.get("__key__")
    size = opts.frame_size
    boxes = (meta.get("annotations") or {}).get("boxes")
    if boxes is None:
        if opts.train:  # the MIL objective needs no boxes: unlabelled training clips are fine
            return _result(torch.zeros(size, size))
        raise ValueError(
            f"{key} ({sample.get('__url__')}): no annotations.boxes in the clip JSON; evaluation "
            f"clips need them (an empty list for a clip with no visible source)"
        )
    single_frame_index(sample, "localization")
    try:
        with Image.open(io.BytesIO(sample["__frames__"][0])) as frame:  # reads the header only
            width, height = frame.width, frame.height
    except OSError as err:
        raise ValueError(f"{key}: could not read the frame's header: {err}") from err
    crop = boxes_to_crop(boxes, width, height, size)
    return _result(torch.from_numpy(draw(crop, size)).float())


def _flickr(boxes: list[list[float]], size: int) -> np.ndarray:
    # flickr_gt_map truncates pixel coordinates; clip first as vggss_gt_map does
    pixels = [[min(max(v, 0.0), 1.0) * size for v in box] for box in boxes]
    return flickr_gt_map(pixels, size=size, annotation_size=size)


def vggss_box_targets(sample: dict[str, Any], meta: dict[str, Any], opts: Any) -> dict[str, Any]:
    """Binary map of the union of ``annotations.boxes`` (VGG-SS, SLAVC's ``bbox2gtmap``).

    Args:
        sample: raw members (``__frames__`` with the chosen frame, ``__frame_indices__``).
        meta: the clip's JSON with ``annotations: {"boxes": [[x0, y0, x1, y1], ...]}``,
            normalised to the stored frame.
        opts: :class:`~avpretrain.data.loading.samples.SampleOptions` (``frame_size``, ``train``).

    Returns:
        ``{"gt_map": [S, S] float32 in {0, 1}, "has_gt": bool}``.
    """
    return _box_targets(sample, meta, opts, vggss_gt_map)


def flickr_box_targets(sample: dict[str, Any], meta: dict[str, Any], opts: Any) -> dict[str, Any]:
    """Soft map of ``annotations.boxes``, one per annotator (Flickr-SoundNet, values 0/0.5/1).

    Args:
        sample: raw members (``__frames__`` with the chosen frame, ``__frame_indices__``).
        meta: the clip's JSON with ``annotations: {"boxes": [...]}``, normalised to the stored
            frame (Flickr's XML pixels divided by 256).
        opts: :class:`~avpretrain.data.loading.samples.SampleOptions` (``frame_size``, ``train``).

    Returns:
        ``{"gt_map": [S, S] float32 in {0, 0.5, 1}, "has_gt": bool}``.
    """
    return _box_targets(sample, meta, opts, _flickr)
