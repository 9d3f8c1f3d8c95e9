"""CLAP (text-audio) and CLIP (text-image) embedders from ``transformers``, loaded offline.

The ACAV-1M paper scores language alignment with pretrained contrastive models: CLAP for a caption
against the audio, CLIP for a caption against the frames. Both are read from a local folder
written by ``save_pretrained`` (model and processor), with ``local_files_only=True``: nothing is
downloaded at run time. Fetch the weights once elsewhere, e.g.
``huggingface-cli download laion/clap-htsat-unfused --local-dir models/clap``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from avpretrain.curation.embedders import Waveforms, stack_waveforms
from avpretrain.data.loading.audio import resample


def _check_dir(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path}: no {what} model here (config.json missing); save one with "
            "`save_pretrained` or download it once with `huggingface-cli download`"
        )
    return path


def _max_text_length(processor: Any, model: Any, reserved: int) -> int:
    """Longest token sequence the text tower takes.

    The tokenizer's limit, capped by the model's position table (minus ``reserved`` slots: RoBERTa's
    positions start after the padding id).
    """
    positions = model.config.text_config.max_position_embeddings - reserved
    return min(int(processor.tokenizer.model_max_length), positions)


def _features(output: Any) -> Tensor:
    # transformers >= 5 returns a model output whose pooler_output is the projected embedding;
    # earlier versions return the tensor itself
    return getattr(output, "pooler_output", output)


class _TextTower:
    """The text half shared by CLAP and CLIP: ``processor`` + ``get_text_features``."""

    model: Any
    processor: Any
    device: torch.device
    max_text_length: int

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> Tensor:
        """Text embeddings: [B, D]; captions longer than the model's positions are cut."""
        inputs = self.processor(
            text=list(texts),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.max_text_length,
        ).to(self.device)
        return _features(self.model.get_text_features(**inputs)).float().cpu()


class ClapEmbedder(_TextTower):
    """Text and audio embeddings of a CLAP model (``ClapModel`` + ``ClapProcessor``).

    Args:
        path: folder holding the model and its processor.
        device: where the model runs.
    """

    name = "clap"
    modalities = frozenset({"audio", "text"})

    def __init__(self, path: str | Path, device: str | torch.device = "cpu") -> None:
        from transformers import ClapModel, ClapProcessor

        path = _check_dir(path, "CLAP")
        self.device = torch.device(device)
        self.model = ClapModel.from_pretrained(path, local_files_only=True).eval().to(self.device)
        self.processor = ClapProcessor.from_pretrained(path, local_files_only=True)
        self.sample_rate = int(self.processor.feature_extractor.sampling_rate)
        self.max_text_length = _max_text_length(self.processor, self.model, reserved=2)

    @torch.no_grad()
    def embed_audio(self, waveforms: Waveforms, sample_rate: int) -> Tensor:
        """CLAP audio embeddings of B mono waveforms: [B, D]."""
        wave = resample(stack_waveforms(waveforms), sample_rate, self.sample_rate)
        inputs = self.processor(
            audio=list(wave.numpy()), sampling_rate=self.sample_rate, return_tensors="pt"
        ).to(self.device)
        return _features(self.model.get_audio_features(**inputs)).float().cpu()

    def embed_frames(self, frames: Tensor) -> Tensor:
        """CLAP has no image tower."""
        raise NotImplementedError("CLAP embeds text and audio, not frames")


class ClipEmbedder(_TextTower):
    """Text and image embeddings of a CLIP model (``CLIPModel`` + ``CLIPProcessor``).

    Args:
        path: folder holding the model and its processor.
        device: where the model runs.
    """

    name = "clip"
    modalities = frozenset({"frames", "text"})

    def __init__(self, path: str | Path, device: str | torch.device = "cpu") -> None:
        from transformers import CLIPModel, CLIPProcessor

        path = _check_dir(path, "CLIP")
        self.device = torch.device(device)
        self.model = CLIPModel.from_pretrained(path, local_files_only=True).eval().to(self.device)
        self.processor = CLIPProcessor.from_pretrained(path, local_files_only=True)
        self.max_text_length = _max_text_length(self.processor, self.model, reserved=0)

    def embed_audio(self, waveforms: Waveforms, sample_rate: int) -> Tensor:
        """CLIP has no audio tower."""
        raise NotImplementedError("CLIP embeds text and images, not audio")

    @torch.no_grad()
    def embed_frames(self, frames: Tensor) -> Tensor:
        """CLIP image embeddings of frames [B, 3, H, W] uint8: [B, D]."""
        images = [np.ascontiguousarray(f.permute(1, 2, 0).numpy()) for f in frames]
        inputs = self.processor(images=images, return_tensors="pt").to(self.device)
        return _features(self.model.get_image_features(**inputs)).float().cpu()
