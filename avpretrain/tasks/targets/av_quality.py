"""MOS targets of the ``av_quality`` task (an ``AVDataModule`` ``targets`` callable).

Reads ``json["annotations"]["mos"]``, the opinion scores a converter or the synthetic quality
world stores (``{"overall", "video", "audio", ...}``), and returns the configured ones as
``{"mos": [K] float32}`` on the 0-100 scale, in the configured order.

Rescale: a database's scale ``[low, high]`` maps linearly to 0-100,
``100 * (r - low) / (high - low)`` (:func:`avpretrain.av_quality.opinion.rescale_100`):

- synthetic quality world: ``scale: [0, 100]`` (identity; ``mos_model`` is on 0-100);
- YT-NTU-AVQ (``overall``/``video``/``audio`` on the 1-5 slider): ``scale: [1, 5]``, so
  1 -> 0, 3 -> 50, 5 -> 100. Its ``av_weight`` is on 0-100 already: score it in a run of its
  own with ``scale: [0, 100]``.

A YAML gives it as a class with its arguments::

    targets:
      class_path: avpretrain.tasks.targets.av_quality.MOSTargets
      init_args: {keys: [overall, video, audio], scale: [1, 5]}

The task's ``targets`` list must name the same keys in the same order (it checks the width).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from avpretrain.av_quality.opinion import rescale_100

MOS_KEYS = ("overall", "video", "audio")


class MOSTargets:
    """Callable ``f(sample, meta, opts) -> {"mos": [K] float32 on 0-100}``.

    Args:
        keys: which entries of ``annotations.mos`` to return, in order (K = ``len(keys)``).
        scale: ``[low, high]`` of the stored values (``[0, 100]`` synthetic, ``[1, 5]``
            YT-NTU-AVQ).
    """

    def __init__(
        self,
        keys: list[str] | tuple[str, ...] = ("overall",),
        scale: tuple[float, float] = (0, 100),
    ) -> None:
        if not keys:
            raise ValueError("MOSTargets: keys must name at least one score")
        if len(scale) != 2 or float(scale[1]) <= float(scale[0]):
            raise ValueError(f"MOSTargets: scale must be [low, high] with high > low, got {scale}")
        self.keys = tuple(keys)
        self.low, self.high = float(scale[0]), float(scale[1])

    def __call__(self, sample: dict[str, Any], meta: dict[str, Any], opts: Any) -> dict[str, Any]:
        """The ``mos`` target of one sample: [K] float32 on the 0-100 scale.

        Args:
            sample: the webdataset sample; its ``__key__`` names the clip in errors.
            meta: its JSON.
            opts: unused.

        Raises:
            ValueError: on a missing, non-numeric or out-of-scale score.
        """
        where = f"clip {sample.get('__key__')!r} ({sample.get('__url__')})"
        mos = (meta.get("annotations") or {}).get("mos")
        if not isinstance(mos, dict):
            raise ValueError(f"{where}: no annotations.mos in its JSON (needed by av_quality)")
        values = []
        for key in self.keys:
            value = mos.get(key)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{where}: annotations.mos.{key} is {value!r}, not a number")
            if not self.low <= value <= self.high:
                raise ValueError(
                    f"{where}: annotations.mos.{key} = {value} outside the configured scale "
                    f"[{self.low}, {self.high}]"
                )
            values.append(rescale_100(float(value), self.low, self.high))
        return {"mos": torch.tensor(values, dtype=torch.float32)}
