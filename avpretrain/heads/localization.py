"""Audio-visual similarity maps for sound source localization, and EZ-VSL's MIL contrastive loss.

As EZ-VSL (stoneMo/EZ-VSL ``model.py:EZVSL``): the visual patch features and the audio embedding
are projected to a shared width (``img_proj`` a 1x1 conv, here a linear layer on the tokens;
``aud_proj`` linear), L2-normalised, and their cosine similarity at each patch is the map.
Training is multiple-instance contrastive (``max_xmil_loss``): the logit of an (image, audio)
pair is the *maximum* over positions of its map divided by tau, and cross-entropy puts each clip's
own pair first, in both directions, so at least one location of the image must match its sound.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avpretrain.heads.binding import already_bound


class LocalizationHead(nn.Module):
    """Projections of visual patch tokens and of the audio embedding into a shared space.

    Input widths are bound by the task once the encoders are known (:meth:`bind`).

    Args:
        dim: width of the shared space (EZ-VSL: 512).
        in_dim: visual token width; None until :meth:`bind`.
        audio_dim: audio embedding width; None until :meth:`bind`.
    """

    def __init__(
        self, dim: int = 512, in_dim: int | None = None, audio_dim: int | None = None
    ) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.in_dim: int | None = None
        self.audio_dim: int | None = None
        if in_dim is not None and audio_dim is not None:
            self.bind(in_dim, audio_dim)

    def bind(self, in_dim: int, audio_dim: int) -> None:
        """Build the projections for visual tokens of width ``in_dim`` and audio of ``audio_dim``.

        A no-op if already built for these widths; an error if built for others.
        """
        if already_bound((self.in_dim, self.audio_dim), (in_dim, audio_dim)):
            return
        self.in_dim, self.audio_dim = in_dim, audio_dim
        self.visual_proj = nn.Linear(in_dim, self.dim)
        self.audio_proj = nn.Linear(audio_dim, self.dim)

    def _check(self) -> None:
        if self.in_dim is None:
            raise RuntimeError("LocalizationHead.bind(in_dim, audio_dim) was not called")

    def visual(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        """Normalised visual features on the patch grid.

        Args:
            tokens: [B, N, Dv] visual patch tokens (no class token), row-major over ``grid``.
            grid: (rows h, cols w), h * w = N.

        Returns:
            [B, dim, h, w], unit norm along ``dim``.
        """
        self._check()
        b, n, _ = tokens.shape
        rows, cols = grid
        if rows * cols != n:
            raise ValueError(f"grid {grid} does not hold {n} tokens")
        x = F.normalize(self.visual_proj(tokens), dim=-1)
        return x.transpose(1, 2).reshape(b, self.dim, rows, cols)

    def audio(self, embedding: Tensor) -> Tensor:
        """Normalised audio features: [B, Da] -> [B, dim], unit norm."""
        self._check()
        return F.normalize(self.audio_proj(embedding), dim=-1)

    def forward(self, tokens: Tensor, grid: tuple[int, int], audio: Tensor) -> Tensor:
        """Cosine similarity map of each image with its own audio.

        Args:
            tokens: [B, N, Dv] visual patch tokens, row-major over ``grid``.
            grid: (rows h, cols w).
            audio: [B, Da] audio embedding.

        Returns:
            [B, h, w] in [-1, 1].
        """
        visual, audio = self.visual(tokens, grid), self.audio(audio)
        with torch.autocast(device_type=visual.device.type, enabled=False):
            return torch.einsum("nchw,nc->nhw", visual.float(), audio.float())


def pair_maps(visual: Tensor, audio: Tensor) -> Tensor:
    """Cosine maps of every image with every audio (EZ-VSL ``einsum('nchw,mc->nmhw')``).

    Args:
        visual: [Bv, C, h, w] normalised visual features.
        audio: [Ba, C] normalised audio features.

    Returns:
        [Bv, Ba, h, w]: entry (n, m) is image n's map for audio m.
    """
    # float32 even under autocast: the logits are cosines / 0.03, where bf16 steps are coarse
    with torch.autocast(device_type=visual.device.type, enabled=False):
        return torch.einsum("nchw,mc->nmhw", visual.float(), audio.float())


def mil_contrastive_loss(maps: Tensor, tau: float = 0.03) -> Tensor:
    """EZ-VSL ``max_xmil_loss``: max-over-positions logits, cross-entropy in both directions.

    Args:
        maps: [B, B, h, w] cosine maps from :func:`pair_maps` (image n, audio m); the matching
            pairs are on the diagonal.
        tau: temperature (EZ-VSL: 0.03).

    Returns:
        Scalar: ``CE(logits, arange) + CE(logits.T, arange)`` with
        ``logits[n, m] = max_hw maps[n, m] / tau`` (a sum, as EZ-VSL, not a mean).
    """
    b = maps.shape[0]
    if maps.dim() != 4 or maps.shape[1] != b:
        raise ValueError(f"maps must be [B, B, h, w], got {tuple(maps.shape)}")
    logits = maps.flatten(-2).amax(dim=-1) / tau
    labels = torch.arange(b, device=maps.device)
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)
