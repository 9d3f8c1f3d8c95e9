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
"""

from __future__ import annotations

import logging
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avpretrain.heads.localization import LocalizationHead, mil_contrastive_loss, pair_maps
from avpretrain.metrics.localization import binarize_heatmap, ciou, localization_summary
from avpretrain.metrics.slavc import slavc_metrics, slavc_sample
from avpretrain.tasks.base import TaskModule

logger = logging.getLogger("avpretrain.tasks")

# per-sample row: EZ-VSL ciou (NaN when not scored), SLAVC confidence, SLAVC ciou, has ground truth
_ROW = 4


class LocalizationTask(TaskModule):
    """Audio-visual similarity maps on the visual patch grid, trained with EZ-VSL's MIL loss.

    Batches need ``video`` [B, 3, S, S], ``audio`` [B, 1, F, T], and for evaluation ``gt_map``
    [B, S, S] and ``has_gt`` [B] (``avpretrain.tasks.localization_targets``). The audio and the
    frames are encoded separately (with fusion layers, the visual tokens would otherwise have
    heard their own clip, in the negatives and the non-sounding pairs too).

    Args:
        head: e.g. ``avpretrain.heads.localization.LocalizationHead``; widths bound here.
        tau: temperature of the MIL logits and of SLAVC's fixed map normalisation (0.03).
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`).
    """

    head: LocalizationHead  # the interface this task calls (bind, forward, ...)

    def __init__(self, head: nn.Module, tau: float = 0.03, **kwargs: Any) -> None:
        super().__init__(head=head, **kwargs)
        if self.hparams.inputs != "av":
            raise ValueError("localization matches audio to image regions: inputs must be 'av'")
        if tau <= 0:
            raise ValueError(f"tau must be positive, got {tau}")
        self.head.bind(self.backbone.video_encoder.embed_dim, self.backbone.audio_encoder.embed_dim)
        self.tau = tau
        self._rows: list[torch.Tensor] = []
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

    def features(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised visual maps [B, C, h, w] and audio features [B, C] of a batch."""
        tokens, grid, audio = self._encode(batch)
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
                f"function of avpretrain.tasks.localization_targets (got keys {sorted(batch)})"
            )
        maps = pair_maps(*self.features(batch))  # [B, B, h, w]: image n, audio m
        b = maps.shape[0]
        self.log(f"{stage}/loss", mil_contrastive_loss(maps, self.tau), batch_size=b)
        maps = maps.detach().cpu().numpy()
        gt = batch["gt_map"].detach().float().cpu().numpy()
        has_gt = batch["has_gt"].detach().cpu().numpy().astype(bool)
        rows = [self._score(maps[i, i], gt[i], bool(has_gt[i])) for i in range(b)]
        if b >= 2:
            empty = np.zeros_like(gt[0])
            rows += [self._score(maps[i, (i + 1) % b], empty, False) for i in range(b)]
        elif not self._warned_single:
            logger.warning("localization: an evaluation batch of 1 clip has no non-sounding pair")
            self._warned_single = True
        self._rows.append(torch.tensor(rows, dtype=torch.float64))

    def _score(self, cos_map: np.ndarray, gt_map: np.ndarray, has_gt: bool) -> list[float]:
        size = gt_map.shape[-1]
        ez = ciou(binarize_heatmap(cos_map, size), gt_map) if has_gt else float("nan")
        conf, slavc_ciou = slavc_sample(cos_map / self.tau, gt_map, self.tau, size=size)
        return [ez, conf, slavc_ciou, float(has_gt)]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; keep the scores of each clip and of a non-sounding pair."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def _gather(self, rows: torch.Tensor) -> torch.Tensor:
        """All ranks' rows in rank order, ranks holding different numbers of rows."""
        count = torch.tensor([rows.shape[0]], device=self.device)
        sizes = cast(torch.Tensor, self.all_gather(count)).flatten().tolist()
        padded = F.pad(rows.to(self.device), (0, 0, 0, max(sizes) - rows.shape[0]))
        gathered = cast(torch.Tensor, self.all_gather(padded))  # [W, max rows, 4]
        return torch.cat([gathered[r, :n] for r, n in enumerate(sizes)]).cpu()

    def _epoch_end(self, stage: str) -> None:
        rows = torch.cat(self._rows) if self._rows else torch.zeros(0, _ROW, dtype=torch.float64)
        self._rows = []
        if self.trainer.world_size > 1:  # score the whole set, not one rank's share
            rows = self._gather(rows)
        if rows.shape[0] == 0:
            return
        scores = summarise(rows)
        if "cIoU" not in scores:
            logger.warning("localization: no %s clip has a sounding object in view", stage)
        scores["num_pairs"] = float(rows.shape[0])  # clips + non-sounding pairs, all ranks
        for name, value in scores.items():
            self.log(f"{stage}/{name}", value, rank_zero_only=True)

    def on_validation_epoch_end(self) -> None:
        """Log the localization scores (:func:`summarise`) over the whole set."""
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        """As :meth:`on_validation_epoch_end`, under ``test/``."""
        self._epoch_end("test")


def summarise(rows: torch.Tensor) -> dict[str, float]:
    """Whole-set figures from the per-sample rows the evaluation steps collect.

    Args:
        rows: [N, 4] float: EZ-VSL ciou (NaN where not scored), SLAVC confidence, SLAVC ciou,
            has ground truth (1/0), for clips and non-sounding pairs alike.

    Returns:
        ``cIoU``, ``AUC``, ``mean_cIoU`` (EZ-VSL, over the rows with ground truth; absent if
        none has) and ``slavc_precision``, ``slavc_AP``, ``slavc_F1`` (SLAVC, all rows, IoU 0.5).
    """
    ez, conf, slavc_ciou, has_gt = rows.double().numpy().T
    has_gt = has_gt > 0.5
    out = localization_summary(ez[has_gt]) if has_gt.any() else {}
    slavc = slavc_metrics(conf, slavc_ciou, has_gt)
    out.update({f"slavc_{name}": slavc[name] for name in ("precision", "AP", "F1")})
    return out
