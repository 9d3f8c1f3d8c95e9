"""Decoding one shard sample into tensors, and collating decoded samples into a batch.

The per-sample half of the loader (:mod:`avpretrain.data.loading.pipeline` wires it into stages):
the chosen frame(s) only are JPEG-decoded (or passed on as bytes, to be decoded on the device),
the audio is read as int16 (FLAC decoded with soundfile, a PCM member as it is), then either
the CPU fbank (``audio`` [1, 128, T]) or, in accelerator mode, a fixed-length ``waveform``
(:mod:`avpretrain.data.loading.worker_audio`) is produced, whose features :class:`WaveformFeatures`
computes on the device after transfer (equal to the CPU fbank).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import default_collate

from avpretrain.arguments import check_choice
from avpretrain.data.audio_codec import decode_audio_int16
from avpretrain.data.loading.audio import BatchedFbank, FbankConfig, fbank, normalize
from avpretrain.data.loading.device_decode import frame_bytes
from avpretrain.data.loading.video import (
    choose_frame_index,
    decode_jpeg,
    frame_transform,
    frames_to_clip,
)
from avpretrain.data.loading.worker_audio import device_waveform, float_waveform, stack_waveforms
from avpretrain.data.schema import JSON_EXT

# how several frames of a clip are chosen (see choose_frames)
FrameSampling = Literal["uniform", "dense"]


@dataclass(frozen=True)
class SampleOptions:
    """What the decode stage produces.

    Args:
        train: random frame choice, crop/flip and the audio augmentations if True.
        fbank: audio feature settings (its ``sample_rate`` is the rate audio is resampled to).
        frame_size: output side of the frames.
        num_frames_per_clip: 1 gives ``video`` [3, H, W]; more give a clip [3, F, H, W].
        frame_sampling: how several frames are chosen (:func:`choose_frames`): ``uniform``
            (one per segment) or ``dense`` (consecutive stored frames).
        audio_on_device: return a fixed-length ``waveform`` instead of the CPU fbank ``audio``.
        frames_on_device: return the frames' JPEG bytes and crop (``frames_jpeg``,
            ``frame_crop``) instead of ``video``; see :mod:`avpretrain.data.loading.device_decode`.
        time_roll: roll the waveform by a random offset (training only).
        gain_db: random gain in [-gain_db, gain_db] dB (training only; 0 disables).
        num_classes: emit ``label`` and ``labels`` from the JSON ``labels`` when set.
        keep_meta: keep the parsed JSON as ``meta``.
        frame_augment: random crop / flip of training frames (off for spatial targets).
        targets: task target builder ``f(sample, meta, opts) -> dict`` called after decoding;
            ``sample`` holds the raw members kept (``extra_members``) and ``__frame_indices__``,
            the stored frames chosen. Tensors it returns are stacked into the batch, other
            values are listed.
        extra_members: raw members kept for ``targets`` (e.g. ``("gt.npz",)``).
    """

    train: bool = False
    fbank: FbankConfig = field(default_factory=FbankConfig)
    frame_size: int = 224
    num_frames_per_clip: int = 1
    frame_sampling: FrameSampling = "uniform"
    audio_on_device: bool = False
    frames_on_device: bool = False
    time_roll: bool = False
    gain_db: float = 0.0
    num_classes: int | None = None
    keep_meta: bool = False
    frame_augment: bool = True
    targets: Callable[..., dict[str, Any]] | None = None
    extra_members: tuple[str, ...] = ()


def choose_frames(
    num_frames: int,
    count: int,
    train: bool,
    generator: torch.Generator | None = None,
    sampling: FrameSampling = "uniform",
) -> list[int]:
    """Indices of the stored frames to use.

    One frame: :func:`video.choose_frame_index` (random when training, middle otherwise).
    Several, ``uniform``: one per equal segment of the clip (TSN sampling), at a random position
    in its segment when training and at the segment's centre otherwise; frames repeat if
    ``count`` exceeds ``num_frames``. Several, ``dense``: ``count`` consecutive stored frames from
    a random start when training and centred otherwise, so frame-to-frame changes (stutter,
    shake) stay visible; it needs ``count <= num_frames``, since repeating frames would fake a
    stutter.
    """
    check_choice("frame sampling", sampling, FrameSampling)
    if count == 1:
        return [choose_frame_index(num_frames, train, generator)]
    if sampling == "dense":
        if count > num_frames:
            raise ValueError(
                f"dense sampling of {count} frames needs clips of at least {count} stored "
                f"frames, got {num_frames}"
            )
        span = num_frames - count
        start = int(torch.randint(span + 1, (1,), generator=generator)) if train else span // 2
        return list(range(start, start + count))
    offsets = torch.rand(count, generator=generator) if train else torch.full((count,), 0.5)
    positions = (torch.arange(count) + offsets) * num_frames / count
    return positions.floor().long().clamp(0, num_frames - 1).tolist()


def single_frame_index(sample: dict[str, Any], what: str) -> int:
    """The index of the one stored frame the loader chose for ``sample`` (``__frame_indices__``).

    Spatial targets (masks, boxes) are drawn at that frame.

    Raises:
        ValueError: naming the clip, when the loader chose no frame or several.
    """
    indices = sample.get("__frame_indices__")
    if not indices or len(indices) != 1:
        raise ValueError(
            f"{sample.get('__key__')}: {what} targets need exactly one frame per clip "
            f"(num_frames_per_clip: 1), got frame indices {indices}"
        )
    return int(indices[0])


class WaveformFeatures(torch.nn.Module):
    """Accelerator-mode features: equal to the workers' per-clip :func:`audio.fbank`.

    ``fbank`` zero-pads short clips in the feature domain, while ``BatchedFbank`` sees the
    zero-padded waveform; frames past each clip's end are therefore set to the value ``fbank``
    pads with, and only then is the time axis resized (``cfg.resize_frames``) as ``fbank`` does.
    The clip mean that ``fbank`` removes first needs no counterpart: every frame kept lies
    inside the clip, and Kaldi's per-frame DC removal cancels any constant offset there.

    Args:
        cfg: feature settings.
    """

    def __init__(self, cfg: FbankConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.fbank = BatchedFbank(replace(cfg, resize_frames=None))

    def forward(self, waveform: Tensor, lengths: Tensor) -> Tensor:
        """Compute features.

        Args:
            waveform: [B, samples] from :func:`worker_audio.stack_waveforms`: float, or int16
                counts (scaled by 1/32768 here, as libsndfile and ``pcm16_to_float`` do).
            lengths: [B] valid samples of each clip.

        Returns:
            [B, 1, num_mel_bins, T] with T = ``cfg.output_frames``.
        """
        cfg = self.cfg
        if waveform.dtype == torch.int16:
            waveform = waveform.float() * (1.0 / 32768.0)
        spec = self.fbank(waveform)  # [B, 1, F, target_frames]
        lengths = lengths.to(spec.device)
        valid = torch.where(
            lengths >= cfg.window_size, 1 + (lengths - cfg.window_size) // cfg.window_shift, 0
        )
        beyond = torch.arange(spec.shape[-1], device=spec.device) >= valid[:, None]  # [B, T]
        pad_value = normalize(torch.tensor(0.0), cfg).item()
        spec = spec.masked_fill(beyond[:, None, None, :], pad_value)
        if cfg.resize_frames is not None and cfg.resize_frames != spec.shape[-1]:
            spec = F.interpolate(spec[:, 0], cfg.resize_frames, mode="linear", align_corners=False)
            spec = spec[:, None]
        return spec


def _labels(meta: dict[str, Any], num_classes: int) -> tuple[int, Tensor]:
    labels = [int(i) for i in meta.get("labels") or []]
    bad = [i for i in labels if not 0 <= i < num_classes]
    if bad:
        raise ValueError(f"labels {bad} outside [0, {num_classes})")
    multi_hot = torch.zeros(num_classes)
    multi_hot[labels] = 1.0
    return (labels[0] if labels else -1), multi_hot


def decode_sample(
    sample: dict[str, Any], opts: SampleOptions, generator: torch.Generator | None = None
) -> dict[str, Any]:
    """Decode one selected sample (see :func:`select_members`) into tensors."""
    for member in (JSON_EXT, "__frames__"):
        if member not in sample:
            raise ValueError(f"no {member.strip('_')} member")
    meta = json.loads(sample[JSON_EXT])
    augment = opts.train and opts.frame_augment
    out: dict[str, Any] = {"key": sample["__key__"]}
    if opts.frames_on_device:
        out.update(frame_bytes(sample["__frames__"], augment, generator))
    else:
        frames = [decode_jpeg(data) for data in sample["__frames__"]]
        if opts.num_frames_per_clip == 1:
            out["video"] = frame_transform(frames[0], opts.frame_size, augment, generator)
        else:
            out["video"] = frames_to_clip(frames, opts.frame_size, augment, generator)
    samples, rate = decode_audio_int16(sample, meta)
    augment = (opts.train and opts.time_roll, opts.gain_db if opts.train else 0.0)
    if opts.audio_on_device:
        out["waveform"], out["waveform_len"] = device_waveform(
            samples, rate, opts.fbank, *augment, generator
        )
    else:
        out["audio"] = fbank(
            float_waveform(samples, rate, opts.fbank, *augment, generator), opts.fbank
        )
    if opts.num_classes is not None:
        out["label"], out["labels"] = _labels(meta, opts.num_classes)
    if opts.keep_meta:
        out["meta"] = meta
    if opts.targets is not None:
        out.update(opts.targets(sample, meta, opts))
    return out


_STACKED = ("audio", "video", "labels")
_LONGS = ("waveform_len", "label")


def collate_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Decoded samples -> one dict batch (tensors stacked on a new leading axis B)."""
    first = samples[0]
    batch: dict[str, Any] = {"key": [s["key"] for s in samples]}
    for name in _STACKED:
        if name in first:
            # default_collate stacks into shared memory in a worker: no copy on the way out
            batch[name] = default_collate([s[name] for s in samples])
    if "waveform" in first:
        batch["waveform"] = stack_waveforms([s["waveform"] for s in samples])
    for name in _LONGS:
        if name in first:
            batch[name] = torch.tensor([s[name] for s in samples], dtype=torch.long)
    for name, value in first.items():  # task targets and meta
        if name in batch or name in _STACKED or name in _LONGS or name == "waveform":
            continue
        values = [s[name] for s in samples]
        batch[name] = torch.stack(values) if isinstance(value, torch.Tensor) else values
    return batch
