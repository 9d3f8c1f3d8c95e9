"""Separation targets for :class:`~avpretrain.data.loading.datamodule.AVDataModule` (``targets``).

The separation task mixes clips' raw waveforms itself (mix-and-separate), so the target is
the clip's waveform at the separation rate (Sound of Pixels: 11025 Hz, 65535 samples, about 6 s),
resampled with torchaudio from the FLAC's rate, in a window centred on the chosen frame's time
(clamped to the clip, zero-padded when the clip is shorter), so sound and picture coincide as
in SoP (which centres the window on the frame and zero-pads beyond the clip's ends, where this
shifts the window inside the clip). Training clips get SoP's random volume, a gain drawn from
[0.5, 1.5) then clipping to [-1, 1]. Any shard works (synthetic or ingested): only ``flac``,
``json`` and the frame choice are read. On the synthetic world, ``sources: on_screen`` gives
instead the sum of the isolated sources of the clip's on-screen objects (``gt.npz``), leaving
out the off-screen sound that 40% of the hard world's clips carry: no frame can tell what that
sound is, so in a mixture it is an unpredictable part of one clip's target, and SoP's setting
(MUSIC: every sound has its player on screen) is the on-screen one. In YAML, give the class and
its settings::

    targets:
      class_path: avpretrain.tasks.targets.separation.SeparationTargets
      init_args: {sample_rate: 11025, num_samples: 65535}

:class:`SynthObjectTargets` serves the task's ``mixture: own`` on the synthetic world: one sounding
object's isolated source in its own clip's mixture, with a frame showing that object alone.
"""

from __future__ import annotations

import io
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio

from avpretrain.arguments import check_choice
from avpretrain.data.audio_codec import decode_audio
from avpretrain.data.loading.video import decode_jpeg, frame_transform
from avpretrain.data.schema import GT_EXT

Sources = Literal["clip", "on_screen"]


class SeparationTargets:
    """Callable target builder: ``{"sep_wave": [num_samples] float32}`` at ``sample_rate``.

    Args:
        sample_rate: rate of the returned waveform (the task's ``SpectrogramConfig.sample_rate``).
        num_samples: window length; clips must be at least this long to avoid zero padding.
        random_volume: in training, scale by a gain from [0.5, 1.5) and clip to [-1, 1] (SoP).
        oracle_classes: synthetic world only: also return ``sep_classes`` [oracle_classes], the
            multi-hot of the clip's on-screen sounding classes (``synthetic.objects``), the true
            visual class the task's ``oracle`` conditioning reads instead of the video.
        sources: ``clip`` (the clip's audio) or ``on_screen`` (synthetic world, needs
            ``extra_members: [gt.npz]``: the sum of the on-screen objects' isolated sources).
    """

    def __init__(
        self,
        sample_rate: int = 11025,
        num_samples: int = 65535,
        random_volume: bool = True,
        oracle_classes: int | None = None,
        sources: Sources = "clip",
    ) -> None:
        check_choice("sources", sources, Sources)
        if sample_rate < 1 or num_samples < 1:
            raise ValueError(
                f"need positive sample_rate and num_samples, got {sample_rate}, {num_samples}"
            )
        if oracle_classes is not None and oracle_classes < 1:
            raise ValueError(f"oracle_classes must be positive, got {oracle_classes}")
        self.sample_rate, self.num_samples = sample_rate, num_samples
        self.random_volume, self.oracle_classes = random_volume, oracle_classes
        self.sources = sources
        # the sinc kernel (e.g. 640 -> 441 phases for 16 kHz) costs more than resampling a clip
        self._resamplers: dict[int, torchaudio.transforms.Resample] = {}

    def resample(self, wave: torch.Tensor, rate: int) -> torch.Tensor:
        """``wave`` [samples] from ``rate`` to ``sample_rate`` (torchaudio, kernel cached)."""
        if rate == self.sample_rate:
            return wave
        if rate not in self._resamplers:
            self._resamplers[rate] = torchaudio.transforms.Resample(rate, self.sample_rate)
        return self._resamplers[rate](wave)

    def window_start(self, length: int, centre: float) -> int:
        """First sample of the window of a clip of ``length`` samples centred at ``centre`` s."""
        start = round(centre * self.sample_rate) - self.num_samples // 2
        return max(0, min(start, length - self.num_samples))

    def window(self, sample: dict[str, Any], meta: dict[str, Any], length: int) -> int:
        """Start of the window around the chosen frame(s) in a clip of ``length`` samples."""
        times = meta.get("frame_times")
        indices = sample.get("__frame_indices__") or []
        if times and indices:
            centre = float(sum(times[i] for i in indices)) / len(indices)
        else:
            centre = length / self.sample_rate / 2
        return self.window_start(length, centre)

    def cut(self, wave: torch.Tensor, start: int, gain: float) -> torch.Tensor:
        """[num_samples] from ``start``, scaled by ``gain``, clipped to [-1, 1], zero-padded."""
        wave = (wave[start : start + self.num_samples] * gain).clamp(-1.0, 1.0)
        return F.pad(wave, (0, self.num_samples - wave.shape[0]))

    def gain(self, opts: Any) -> float:
        """SoP's random volume in training, else 1."""
        if self.random_volume and getattr(opts, "train", False):
            return 0.5 + float(torch.rand(()))
        return 1.0

    def clip_audio(self, sample: dict[str, Any], meta: dict[str, Any]) -> torch.Tensor:
        """The clip's audio at ``sample_rate``: [samples]."""
        audio, rate = decode_audio(sample, meta)
        wave = self.resample(torch.from_numpy(audio).float(), rate)
        if wave.shape[0] == 0:
            raise ValueError(f"{sample.get('__key__')} ({sample.get('__url__')}): empty audio")
        return wave

    def on_screen_audio(self, sample: dict[str, Any], meta: dict[str, Any]) -> torch.Tensor:
        """Sum of the on-screen objects' isolated sources at ``sample_rate``: [samples].

        Silent when no on-screen object sounds (the metric skips silent references).
        """
        if GT_EXT not in sample:
            raise ValueError(
                f"{sample.get('__key__')} ({sample.get('__url__')}): sources='on_screen' needs "
                "the synthetic gt.npz member (extra_members: [gt.npz])"
            )
        with np.load(io.BytesIO(sample[GT_EXT])) as gt:
            sources, owners = gt["sources"], gt["source_object"]
        objects = meta["synthetic"]["objects"]
        shown = [k for k, o in enumerate(owners) if objects[int(o)]["on_screen"]]
        total = sources[shown].sum(axis=0) if shown else np.zeros(sources.shape[-1], "float32")
        return self.resample(torch.from_numpy(total).float(), int(meta["sample_rate"]))

    def classes(self, sample: dict[str, Any], meta: dict[str, Any], objects: list[int]) -> dict:
        """``{"sep_classes": [oracle_classes]}``, the multi-hot of ``objects``' classes.

        Indices into the JSON's ``synthetic.objects``; ``{}`` without ``oracle_classes``.
        """
        if self.oracle_classes is None:
            return {}
        records = meta["synthetic"]["objects"]
        hot = torch.zeros(self.oracle_classes)
        for j in objects:
            cls = int(records[j]["class_id"])
            if not 0 <= cls < self.oracle_classes:
                raise ValueError(
                    f"{sample.get('__key__')} ({sample.get('__url__')}): synthetic.objects[{j}] "
                    f"class_id {cls} is outside oracle_classes {self.oracle_classes}"
                )
            hot[cls] = 1.0
        return {"sep_classes": hot}

    def __call__(self, sample: dict[str, Any], meta: dict[str, Any], opts: Any) -> dict[str, Any]:
        """The clip's waveform (or its on-screen sources') around the chosen frame.

        Args:
            sample: raw members (``flac`` or ``pcm16``, ``__frame_indices__``; ``gt.npz`` for
                ``sources="on_screen"``).
            meta: the clip's JSON (``frame_times``; the clip's middle when absent).
            opts: :class:`~avpretrain.data.loading.samples.SampleOptions` (its ``train`` flag).

        Returns:
            ``{"sep_wave": [num_samples] float32}``, with ``oracle_classes`` also
            ``sep_classes`` (see :meth:`classes`).
        """
        if self.sources == "on_screen":
            wave = self.on_screen_audio(sample, meta)
        else:
            wave = self.clip_audio(sample, meta)
        start = self.window(sample, meta, wave.shape[0])
        out = {"sep_wave": self.cut(wave, start, self.gain(opts))}
        if self.oracle_classes is not None:
            if "synthetic" not in meta:
                raise ValueError(
                    f"{sample.get('__key__')} ({sample.get('__url__')}): oracle_classes needs "
                    "the synthetic world's JSON field 'synthetic'"
                )
            objects = meta["synthetic"]["objects"]
            shown = [j for j, o in enumerate(objects) if o["sounding"] and o["on_screen"]]
            out.update(self.classes(sample, meta, shown))
        return out


class SynthObjectTargets(SeparationTargets):
    """Own-mixture targets on the synthetic world: one on-screen sounding object of the clip.

    For the task's ``mixture: own``: the clip's audio is the mixture, the chosen object's isolated
    source (``gt.npz`` ``sources`` / ``source_object``) the source to extract, and the frame
    shows that object alone (its pixels from ``gt.npz`` ``masks``, the rest black), so the
    visual input points at it. The object is drawn at random in training and is the first
    eligible one otherwise; a clip without an on-screen sounding object is an error (logged and
    skipped by the loader). Needs ``extra_members: [gt.npz]``.

    Args: as :class:`SeparationTargets`.
    """

    def __call__(self, sample: dict[str, Any], meta: dict[str, Any], opts: Any) -> dict[str, Any]:
        """The clip's audio, the object's source and the object-only frame.

        Returns:
            ``sep_wave`` (the clip's audio), ``sep_source`` (the object's source), ``sep_rest``
            (the sum of the clip's other sources), each [num_samples], and ``video`` [3, S, S];
            with ``oracle_classes`` also ``sep_classes``, the one-hot of the object's class.
        """
        key = sample.get("__key__")
        indices = sample.get("__frame_indices__") or []
        if len(indices) != 1 or GT_EXT not in sample:
            raise ValueError(
                f"{key}: object targets need one frame per clip and the gt.npz member "
                f"(extra_members: [gt.npz]); got frames {indices}"
            )
        with np.load(io.BytesIO(sample[GT_EXT])) as gt:
            sources, owners, masks = gt["sources"], gt["source_object"], gt["masks"]
        objects = meta["synthetic"]["objects"]
        eligible = [j for j, o in enumerate(owners) if objects[int(o)]["on_screen"]]
        if not eligible:
            raise ValueError(f"{key}: no on-screen sounding object to separate")
        pick = eligible[0]
        if getattr(opts, "train", False):
            pick = eligible[int(torch.randint(len(eligible), ()))]
        wave = self.clip_audio(sample, meta)
        rate = int(meta["sample_rate"])
        source = self.resample(torch.from_numpy(sources[pick]).float(), rate)
        # the other sources from gt, not the clip minus the source: with no other source the
        # rest is exactly silent (skipped by the metric) rather than FLAC quantisation noise
        others = np.delete(sources, pick, axis=0).sum(axis=0)
        rest = self.resample(torch.from_numpy(others).float(), rate)
        start, gain = self.window(sample, meta, wave.shape[0]), self.gain(opts)
        frame = decode_jpeg(sample["__frames__"][0])
        alone = torch.from_numpy(masks[indices[0]] == int(owners[pick]) + 1)
        video = frame_transform(frame * alone, opts.frame_size, train=False)
        return {
            "sep_wave": self.cut(wave, start, gain),
            "sep_source": self.cut(source, start, gain),
            "sep_rest": self.cut(rest, start, gain),
            "video": video,
            **self.classes(sample, meta, [int(owners[pick])]),
        }
