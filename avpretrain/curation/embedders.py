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
from typing import Any, Literal, Protocol, TypeGuard, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from avpretrain.arguments import check_choice, choices
from avpretrain.curation.text_tower import TextTower
from avpretrain.data.loading.audio import BatchedFbank, FbankConfig, resample
from avpretrain.data.loading.video import frame_transform
from avpretrain.models import AVMAE
from avpretrain.models.encoder_file import encoder_state, load_encoders

Waveforms = Sequence[np.ndarray] | Sequence[Tensor] | Tensor
AvSpace = Literal["pooled", "retrieval"]
AV_SPACES: tuple[str, ...] = choices(AvSpace)


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


def same_weights(a: AVMAE, b: AVMAE) -> bool:
    """Whether two AV-MAEs have the same architecture and encoder weights."""
    if a is b:
        return True
    sa, sb = encoder_state(a), encoder_state(b)
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def supports(embedder: Embedder | None, *modalities: str) -> TypeGuard[Embedder]:
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


def _input_sizes(model: AVMAE) -> tuple[tuple[int, ...], int, int]:
    cfg: dict[str, Any] = model.config
    return tuple(cfg["audio_shape"]), int(cfg["video_size"]), int(cfg["num_frames"])


class AVMAEEmbedder:
    """The framework's own encoders: pooled AV-MAE audio and video embeddings.

    Audio is resampled to ``fbank.sample_rate`` and turned into the fbank the audio encoder was
    built for (its mel bins and frames, padded or cut); frames are resized and centre-cropped to
    the video encoder's size (repeated along time for a multi-frame encoder).

    Captions need a :class:`~avpretrain.curation.text_tower.TextTower` (a fitted retrieval head).
    Its space is the retrieval head's, where a caption is matched with the clip's *fused* audio
    and video: :meth:`embed_text` is compared with :meth:`embed_audio_visual`, never with
    :meth:`embed_audio` or :meth:`embed_frames` (another space), so this embedder serves the
    ``text_av`` score, not ``text_audio`` / ``text_visual``.

    Audio and frames are embedded in one of two spaces (``av_space``): ``pooled``, the encoders'
    pooled embeddings (aligned by the pretraining's contrastive term), or ``retrieval``, the
    tower's audio and video projections of its own backbone's pooled embeddings (trained
    against each other by the retrieval task: the sharper space when the tower was fitted).

    Args:
        model: an AV-MAE (e.g. from :func:`avpretrain.models.encoder_file.load_encoders`).
        text_tower: optional caption side of a retrieval head trained on an AV-MAE with the
            same input sizes (its own backbone feeds the fused embedding; when its weights equal
            ``model``'s, as after a linear probe, ``model`` is reused).
        fbank: feature settings; ``num_mel_bins`` and ``target_frames`` are taken from the model.
        device: where the model runs.
        av_space: ``pooled`` or ``retrieval`` (needs ``text_tower``).

    Raises:
        ValueError: the tower's backbone takes other input sizes than ``model``, or
            ``av_space`` is unknown or needs a tower this embedder lacks.
    """

    name = "own"

    def __init__(
        self,
        model: AVMAE,
        text_tower: TextTower | None = None,
        fbank: FbankConfig | None = None,
        device: str | torch.device = "cpu",
        av_space: AvSpace = "pooled",
    ) -> None:
        check_choice("av_space", av_space, AvSpace)
        if av_space == "retrieval" and text_tower is None:
            raise ValueError("av_space 'retrieval' needs a text tower (--text-encoder)")
        self.av_space = av_space
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        config: dict[str, Any] = model.config  # the constructor's arguments
        mel_bins, frames = config["audio_shape"]
        base = fbank or FbankConfig()
        # the encoder's input size wins; a resizing recipe (paper) keeps its own target_frames
        size: dict[str, Any]
        size = {"resize_frames": frames} if base.resize_frames else {"target_frames": frames}
        self.fbank_cfg = replace(base, num_mel_bins=mel_bins, **size)
        self.features = BatchedFbank(self.fbank_cfg).to(self.device)
        self.video_size = int(config["video_size"])
        self.num_frames = int(config["num_frames"])
        self.text_tower = None if text_tower is None else text_tower.eval().to(self.device)
        self.text_backbone = model
        if text_tower is not None:
            theirs, ours = _input_sizes(text_tower.backbone), _input_sizes(model)
            if theirs != ours:
                raise ValueError(
                    f"text tower backbone takes (audio_shape, video_size, num_frames) {theirs}, "
                    f"the encoders {ours}"
                )
            if not same_weights(model, text_tower.backbone):
                self.text_backbone = text_tower.backbone
        self.modalities = {"audio", "frames"}
        if text_tower is not None:
            self.modalities |= {"text", "audio_visual"}

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        text_tower: TextTower | None = None,
        av_space: AvSpace = "pooled",
    ) -> AVMAEEmbedder:
        """Load an encoder file written by ``avpretrain export`` (and optionally a tower)."""
        return cls(load_encoders(path), text_tower=text_tower, device=device, av_space=av_space)

    def _spec(self, waveforms: Waveforms, sample_rate: int) -> Tensor:
        """Model-ready fbank [B, 1, F, T]."""
        wave = resample(stack_waveforms(waveforms), sample_rate, self.fbank_cfg.sample_rate)
        return self.features(wave.to(self.device))

    def _video(self, frames: Tensor) -> Tensor:
        """Model-ready video [B, 3, H, W] (or [B, 3, T, H, W]) of uint8 frames [B, 3, H, W]."""
        video = frame_transform(frames.to(self.device), self.video_size, train=False)
        if self.num_frames > 1:  # a still clip, so one frame can feed a multi-frame encoder
            video = video.unsqueeze(2).expand(-1, -1, self.num_frames, -1, -1)
        return video

    @torch.no_grad()
    def embed_audio(self, waveforms: Waveforms, sample_rate: int) -> Tensor:
        """Audio embeddings in ``av_space``: [B, D]."""
        spec = self._spec(waveforms, sample_rate)
        if self.av_space == "retrieval":
            pooled = self.text_backbone.encode(audio=spec)["audio_embedding"]
            return self._tower().embed_audio(pooled).float().cpu()
        return self.model.encode(audio=spec)["audio_embedding"].float().cpu()

    @torch.no_grad()
    def embed_frames(self, frames: Tensor) -> Tensor:
        """Embeddings of single frames [B, 3, H, W] uint8 in ``av_space``: [B, D]."""
        video = self._video(frames)
        if self.av_space == "retrieval":
            pooled = self.text_backbone.encode(video=video)["video_embedding"]
            return self._tower().embed_video(pooled).float().cpu()
        return self.model.encode(video=video)["video_embedding"].float().cpu()

    def _tower(self) -> TextTower:
        if self.text_tower is None:
            raise NotImplementedError("the own embedder has no text tower (--text-encoder)")
        return self.text_tower

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> Tensor:
        """Captions in the retrieval space (compare with :meth:`embed_audio_visual`): [B, E]."""
        return self._tower().embed_text(list(texts)).float().cpu()

    @torch.no_grad()
    def embed_audio_visual(self, waveforms: Waveforms, sample_rate: int, frames: Tensor) -> Tensor:
        """Fused clips in the retrieval space, as the retrieval task embeds them.

        Each modality is encoded on its own (as :class:`~avpretrain.tasks.retrieval.
        RetrievalTask` does), then the pooled pair goes through the head's ``av_proj``.

        Args:
            waveforms: B mono waveforms of equal length, or [B, T], at ``sample_rate``.
            sample_rate: rate of ``waveforms`` in Hz.
            frames: [B, 3, H, W] uint8, one frame per clip (the task evaluates the middle one).

        Returns:
            [B, E], L2-normalised.
        """
        tower = self._tower()
        audio = self.text_backbone.encode(audio=self._spec(waveforms, sample_rate))
        video = self.text_backbone.encode(video=self._video(frames))
        return tower.embed_av(audio["audio_embedding"], video["video_embedding"]).float().cpu()
