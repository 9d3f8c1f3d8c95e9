"""Sound source localization (Flickr-SoundNet, VGG-SS; SLAVC's extended protocol).

Trained as EZ-VSL (stoneMo/EZ-VSL ``model.py``): the audio-visual cosine map of every image with
every audio of the batch, the maximum over positions / tau as the pair's logit, cross-entropy
towards the clip's own pair in both directions (``avpretrain.heads.localization``). Scored as
EZ-VSL's ``test.py`` (cIoU success rate at 0.5 and AUC, on the clips with a sounding object in
view) and as SLAVC's ``test.py`` (Precision, AP, F1) on those clips plus *non-sounding pairs*.

Non-sounding pairs: in each evaluation batch of B >= 2 clips, image i is paired with the audio of
clip (i + 1) mod B - a cyclic shift, so each clip's audio is used once and the pairs do not
depend on randomness - with an empty ground truth; this adds as many pairs as there are clips, as
SLAVC's ``*_plus_silent`` test lists do (they draw the other clip at random). Clips whose own
ground truth is empty (no sounding object in view: ``has_gt`` false) are non-sounding samples
too, and are left out of cIoU and AUC, which EZ-VSL computes over annotated clips only. A
mismatched audio can still name a class visible in the image (more so in a small world); the
pair is counted as non-sounding regardless, as in SLAVC.

Beside the head's maps, ``zero_shot`` scores the backbone's own maps, untouched by the head: the
cosine of the audio embedding with each visual patch token (``zs_cIoU``, ``zs_AUC``,
``zs_mean_cIoU``, EZ-VSL's figures), which tells what pretraining aligned between sounds and
image regions before any head was trained (as retrieval's ``zs_*``).
"""

from __future__ import annotations

import logging
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from avpretrain.heads.localization import LocalizationHead, mil_contrastive_loss, pair_maps
from avpretrain.metrics.localization import LocalizationMetrics
from avpretrain.metrics.slavc import SLAVCMetrics
from avpretrain.tasks.base import TaskModule, collect

logger = logging.getLogger("avpretrain.tasks")


class LocalizationTask(TaskModule):
    """Audio-visual similarity maps on the visual patch grid, trained with EZ-VSL's MIL loss.

    Batches need ``video`` [B, 3, S, S], ``audio`` [B, 1, F, T], and for evaluation ``gt_map``
    [B, S, S] and ``has_gt`` [B] (``avpretrain.tasks.targets.localization``). The audio and the
    frames are encoded separately (with fusion layers, the visual tokens would otherwise have
    heard their own clip, in the negatives and the non-sounding pairs too).

    Args:
        head: e.g. ``avpretrain.heads.localization.LocalizationHead``; widths bound here.
        tau: temperature of the MIL logits and of SLAVC's fixed map normalisation (0.03).
        zero_shot: also score the backbone's own maps (``zs_*``, see the module docstring);
            None: when the visual and audio widths match.
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`).
    """

    head: LocalizationHead  # the interface this task calls (bind, forward, ...)

    def __init__(
        self, head: nn.Module, tau: float = 0.03, zero_shot: bool | None = None, **kwargs: Any
    ) -> None:
        super().__init__(head=head, **kwargs)
        if self.hparams.inputs != "av":
            raise ValueError("localization matches audio to image regions: inputs must be 'av'")
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        widths = (self.backbone.video_encoder.embed_dim, self.backbone.audio_encoder.embed_dim)
        self.head.bind(*widths)
        if zero_shot and widths[0] != widths[1]:
            raise ValueError(
                f"zero_shot compares visual tokens and audio embeddings by cosine: their widths "
                f"{widths} differ (leave zero_shot unset or false)"
            )
        self.zero_shot = widths[0] == widths[1] if zero_shot is None else zero_shot
        self.tau = tau
        self.ez_vsl = LocalizationMetrics()  # the clips with a sounding object in view
        self.backbone_maps = LocalizationMetrics()  # zero_shot: the encoders' own cosine maps
        self.slavc = SLAVCMetrics(tau=tau)  # every clip and non-sounding pair
        self._warned_single = False

    def _encode(self, batch: dict[str, Any]) -> tuple[torch.Tensor, tuple[int, int], torch.Tensor]:
        """Visual patch tokens [B, N, Dv], their grid (h, w), audio embeddings [B, Da]."""
        video = batch["video"]
        if video.dim() != 4:
            raise ValueError(
                f"localization needs one frame per clip [B, 3, S, S], got {video.shape}"
            )
        encoder = self.backbone.video_encoder
        tokens = self.encode({"video": video})["video_tokens"][:, encoder.num_prefix_tokens :]
        audio = self.encode({"audio": batch["audio"]})["audio_embedding"]
        grid = cast("tuple[int, int]", encoder.grid_for(video))  # one frame: (rows, cols)
        return tokens, grid, audio

    def features(
        self, batch: dict[str, Any], encoded: tuple[torch.Tensor, Any, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised visual maps [B, C, h, w] and audio features [B, C] of a batch.

        ``encoded``: the batch's :meth:`_encode` output, when already computed.
        """
        tokens, grid, audio = encoded or self._encode(batch)
        return self.head.visual(tokens, grid), self.head.audio(audio)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Cosine map of each image with its own audio: [B, h, w] in [-1, 1]."""
        return self.head(*self._encode(batch))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """MIL contrastive loss of one batch; logs ``train/loss``."""
        loss = mil_contrastive_loss(pair_maps(*self.features(batch)), self.tau)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["key"]))
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        if "gt_map" not in batch or "has_gt" not in batch:
            raise ValueError(
                f"{stage} batches need gt_map and has_gt: set the data module's targets to a "
                f"function of avpretrain.tasks.targets.localization (got keys {sorted(batch)})"
            )
        encoded = self._encode(batch) if self.zero_shot else None
        maps = pair_maps(*self.features(batch, encoded))  # [B, B, h, w]: image n, audio m
        b = maps.shape[0]
        self.log(f"{stage}/loss", mil_contrastive_loss(maps, self.tau), batch_size=b)
        maps = maps.detach().float()
        gt, has_gt = batch["gt_map"].float(), batch["has_gt"].bool()
        own = maps.diagonal().permute(2, 0, 1)  # [B, h, w]: each image with its own audio
        self.ez_vsl.update(own[has_gt], gt[has_gt])
        self.slavc.update(own / self.tau, gt, has_gt)
        if encoded is not None:
            tokens, grid, audio = encoded
            cosine = torch.einsum(
                "bnd,bd->bn",
                F.normalize(tokens.float(), dim=-1),
                F.normalize(audio.float(), dim=-1),
            )
            self.backbone_maps.update(cosine.reshape(b, *grid)[has_gt].detach(), gt[has_gt])
        if b >= 2:  # image i with the audio of clip i + 1, with an empty ground truth
            shifted = maps[torch.arange(b), torch.arange(1, b + 1) % b]
            self.slavc.update(shifted / self.tau, torch.zeros_like(gt), torch.zeros_like(has_gt))
        elif not self._warned_single:
            logger.warning("localization: an evaluation batch of 1 clip has no non-sounding pair")
            self._warned_single = True

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; keep the scores of each clip and of a non-sounding pair."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def epoch_scores(self, stage: str) -> dict[str, float]:
        """Whole-set figures over every rank's clips and non-sounding pairs.

        ``cIoU``, ``AUC``, ``mean_cIoU`` (EZ-VSL, over the clips with ground truth; absent if
        none has), ``slavc_precision``, ``slavc_AP``, ``slavc_F1`` (SLAVC, every clip and pair,
        IoU 0.5), ``num_pairs`` (clips + non-sounding pairs) and with ``zero_shot``
        ``zs_cIoU``, ``zs_AUC``, ``zs_mean_cIoU`` (the backbone's own maps).
        """
        ez, slavc = collect(self.ez_vsl), collect(self.slavc)
        zs = collect(self.backbone_maps)
        zs.pop("count", None)
        if not slavc:
            return {}
        if not ez.pop("count", 0.0):
            logger.warning("localization: no %s clip has a sounding object in view", stage)
        scores = {**ez, **{f"slavc_{name}": slavc[name] for name in ("precision", "AP", "F1")}}
        scores.update({f"zs_{name}": value for name, value in zs.items()})
        return {**scores, "num_pairs": slavc["count"]}
