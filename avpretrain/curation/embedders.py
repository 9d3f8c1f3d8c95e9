"""Embedders for curation: the protocol the scores need, and the framework's own AV-MAE.

An embedder maps each modality of a clip to a vector; the alignment scores compare vectors of two
modalities from the *same* embedder (one shared space), so a pair of modalities is scored only by
an embedder that embeds both. A method an embedder cannot serve raises ``NotImplementedError``
and the curation stage that needs it is skipped (with a log line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from avpretrain.data.audio import BatchedFbank, FbankConfig, resample
from avpretrain.data.video import frame_transform
from avpretrain.export import load_encoders
from avpretrain.heads.text import TextEncoder
from avpretrain.models import AVMAE

Waveforms = Sequence[np.ndarray] | Sequence[Tensor] | Tensor


@runtime_checkable
class Embedder(Protocol):
    """What the alignment scores need from a model (any method may raise NotImplementedError)."""

    name: str

    def embed_audio(self, waveforms: Waveforms, sample_rate: int) -> Tensor:
        """Embed mono waveforms (B of equal length, or [B, T]) at ``sample_rate``: [B, D]."""
        ...

    def embed_frames(self, frames: Tensor) -> Tensor:
        """Embed RGB frames [B, 3, H, W] uint8: [B, D]."""
        ...

    def embed_text(self, texts: list[str]) -> Tensor:
        """Embed B captions: [B, D]."""
        ...


def supports(embedder: Embedder | None, *modalities: str) -> bool:
    """Whether ``embedder`` claims every one of ``modalities`` ("audio", "frames", "text").

    Decided from the optional ``modalities`` attribute (a set of names); an embedder without one
    is assumed to support everything, and a NotImplementedError at run time still skips the stage.
    """
    if embedder is None:
        return False
    claimed = getattr(embedder, "modalities", None)
    return claimed is None or all(m in claimed for m in modalities)


def stack_waveforms(waveforms: Waveforms) -> Tensor:
    """B mono waveforms of equal length as one float32 tensor [B, T]."""
    if isinstance(waveforms, Tensor):
        if waveforms.dim() != 2:
            raise ValueError(f"waveforms must be [B, T], got {tuple(waveforms.shape)}")
        return waveforms.float()
    rows = [torch.as_tensor(np.asarray(w), dtype=torch.float32) for w in waveforms]
    lengths = {r.shape[-1] for r in rows}
    if len(lengths) != 1 or any(r.dim() != 1 for r in rows):
        raise ValueError(f"waveforms must be mono and of equal length, got lengths {lengths}")
    return torch.stack(rows)


class AVMAEEmbedder:
    """The framework's own encoders: pooled AV-MAE audio and video embeddings.

    Audio is resampled to ``fbank.sample_rate`` and turned into the fbank the audio encoder was
    built for (its mel bins and frames, padded or cut); frames are resized and centre-cropped to
    the video encoder's size (repeated along time for a multi-frame encoder). Text is embedded
    only when a text encoder is given, and it must share the AV-MAE's embedding width.

    Args:
        model: an AV-MAE (e.g. from :func:`avpretrain.export.load_encoders`).
        text_encoder: optional text encoder trained into the same space.
        fbank: feature settings; ``num_mel_bins`` and ``target_frames`` are taken from the model.
        device: where the model runs.
    """

    name = "own"

    def __init__(
        self,
        model: AVMAE,
        text_encoder: TextEncoder | None = None,
        fbank: FbankConfig | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.text_encoder = None if text_encoder is None else text_encoder.eval().to(self.device)
        mel_bins, frames = model.config["audio_shape"]
        base = fbank or FbankConfig()
        # the encoder's input size wins; a resizing recipe (paper) keeps its own target_frames
        size = {"resize_frames": frames} if base.resize_frames else {"target_frames": frames}
        self.fbank_cfg = replace(base, num_mel_bins=mel_bins, **size)
        self.features = BatchedFbank(self.fbank_cfg).to(self.device)
        self.video_size = int(model.config["video_size"])
        self.num_frames = int(model.config["num_frames"])
        self.modalities = {"audio", "frames"} | ({"text"} if text_encoder is not None else set())

    @classmethod
    def from_file(cls, path: str | Path, device: str | torch.device = "cpu") -> AVMAEEmbedder:
        """Load an encoder file written by ``avpretrain export``."""
        return cls(load_encoders(path), device=device)

    @torch.no_grad()
    def embed_audio(self, waveforms: Waveforms, sample_rate: int) -> Tensor:
        """Pooled audio-encoder embeddings: [B, D]."""
        wave = resample(stack_waveforms(waveforms), sample_rate, self.fbank_cfg.sample_rate)
        spec = self.features(wave.to(self.device))  # [B, 1, F, T]
        return self.model.encode(audio=spec)["audio_embedding"].float().cpu()

    @torch.no_grad()
    def embed_frames(self, frames: Tensor) -> Tensor:
        """Pooled video-encoder embeddings of single frames [B, 3, H, W] uint8: [B, D]."""
        video = frame_transform(frames.to(self.device), self.video_size, train=False)
        if self.num_frames > 1:  # a still clip, so one frame can feed a multi-frame encoder
            video = video.unsqueeze(2).expand(-1, -1, self.num_frames, -1, -1)
        return self.model.encode(video=video)["video_embedding"].float().cpu()

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> Tensor:
        """Text-encoder embeddings: [B, D]; NotImplementedError without a text encoder."""
        if self.text_encoder is None:
            raise NotImplementedError("the own embedder has no text encoder")
        return self.text_encoder.encode_text(list(texts)).float().cpu()
