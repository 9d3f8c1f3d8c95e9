"""The pretraining LightningModule: an :class:`~avpretrain.models.AVMAE` plus its optimiser.

The module composes library parts (model, losses, schedule); it adds only what Lightning needs:
logging, the optimiser and schedule, and reproducible masking for validation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import lightning.pytorch as pl
import torch

from avpretrain.models import AVMAE, AVMAEOutput
from avpretrain.models.weights import import_weights as load_external_weights
from avpretrain.training.param_groups import param_groups
from avpretrain.training.schedule import scaled_lr, warmup_cosine

if TYPE_CHECKING:
    from lightning.pytorch.core.optimizer import LightningOptimizer
    from lightning.pytorch.utilities.parsing import AttributeDict
    from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig


class AVMAEPretrain(pl.LightningModule):
    """Pretrains a dual-encoder audio-visual MAE on batches ``{audio, video, ...}``.

    Args:
        model: the AV-MAE to train (``class_path: avpretrain.models.AVMAE`` in YAML).
        optimizer: ``"adamw"`` (MAE) or ``"adam"`` (the ACAV-1M paper).
        base_lr: learning rate per ``lr_reference_batch`` samples; the peak rate is
            ``base_lr * global_batch / lr_reference_batch`` (MAE's scaling rule).
        lr: a fixed peak learning rate; overrides ``base_lr`` scaling when set (paper: 1e-4).
        lr_reference_batch: the batch size ``base_lr`` refers to.
        weight_decay: decoupled weight decay (AdamW) or L2 (Adam) on weight matrices only
            (:mod:`avpretrain.training.param_groups`).
        betas: Adam betas.
        warmup_steps: linear warmup length in optimiser steps; ``None`` uses ``warmup_fraction``.
        warmup_fraction: warmup as a fraction of all training steps when ``warmup_steps`` is None.
        min_lr_ratio: the cosine schedule's final learning rate as a fraction of the peak.
        compile: compile the model with ``torch.compile`` before training.
        val_seed: seed of the validation masks, so validation losses compare across epochs.
        import_weights: external weights to start from, by kind: ``{"mae": path}`` (timm / MAE
            ImageNet ViT into the video encoder), ``{"audiomae": path}`` (audio encoder),
            ``{"cavmae": path}`` (both; build the model with ``cls_token: false``).
    """

    # what save_hyperparameters() stores: the constructor's arguments, read as attributes
    hparams: AttributeDict

    def __init__(
        self,
        model: AVMAE,
        optimizer: str = "adamw",
        base_lr: float = 1.5e-4,
        lr: float | None = None,
        lr_reference_batch: int = 256,
        weight_decay: float = 0.05,
        betas: tuple[float, float] = (0.9, 0.95),
        warmup_steps: int | None = None,
        warmup_fraction: float = 0.05,
        min_lr_ratio: float = 0.0,
        compile: bool = False,
        val_seed: int = 0,
        import_weights: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        if optimizer not in ("adamw", "adam"):
            raise ValueError(f"optimizer must be 'adamw' or 'adam', got {optimizer!r}")
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        for kind, path in (import_weights or {}).items():
            load_external_weights(model, kind, path)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # the model's constructor arguments travel with the weights (see avpretrain.models.encoder_file)
        """Store the model's constructor config (``avmae_config``) with the weights."""
        checkpoint["avmae_config"] = self.model.config

    def setup(self, stage: str) -> None:
        """Compile the model for ``fit`` when ``compile`` is set."""
        if self.hparams.compile and stage == "fit":
            self.model.compile()

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor, generator: torch.Generator | None = None
    ) -> AVMAEOutput:
        """Masked reconstruction of ``audio [B, 1, F, T]`` and ``video [B, 3, H, W]``."""
        return self.model(audio, video, generator=generator)

    def _log_losses(self, out: AVMAEOutput, prefix: str, batch_size: int, on_step: bool) -> None:
        values = {
            f"{prefix}/loss": out.loss,
            f"{prefix}/loss_audio": out.loss_audio,
            f"{prefix}/loss_video": out.loss_video,
        }
        if self.model.contrastive_weight > 0:
            values[f"{prefix}/loss_contrastive"] = out.loss_contrastive
        if self.model.audio_view_weight > 0:
            values[f"{prefix}/loss_audio_view"] = out.loss_audio_view
        if self.model.video_view_weight > 0:
            values[f"{prefix}/loss_video_view"] = out.loss_video_view
        self.log_dict(
            values,
            on_step=on_step,
            on_epoch=not on_step,
            prog_bar=on_step,
            batch_size=batch_size,
            sync_dist=not on_step,
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """Loss of one batch; logs the loss terms and the learning rate."""
        out = self(batch["audio"], batch["video"])
        self._log_losses(out, "train", batch["audio"].shape[0], on_step=True)
        optimizer = cast("LightningOptimizer", self.optimizers())  # one optimiser
        self.log("train/lr", optimizer.param_groups[0]["lr"], on_step=True)
        return out.loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """Loss of one batch with seeded masks (``val_seed + batch_idx``), logged per epoch."""
        generator = torch.Generator(device=self.device)
        generator.manual_seed(self.hparams.val_seed + batch_idx)
        out = self(batch["audio"], batch["video"], generator=generator)
        self._log_losses(out, "val", batch["audio"].shape[0], on_step=False)
        return out.loss

    def global_batch_size(self) -> int:
        """Samples per optimiser step over all ranks (batch x ranks x accumulation)."""
        trainer = self.trainer
        datamodule = trainer.datamodule  # type: ignore[attr-defined]  # set by Lightning, undeclared
        batch = getattr(datamodule, "batch_size", None) if datamodule else None
        if batch is None:
            raise ValueError("base_lr scaling needs the datamodule's batch_size; or set `lr`")
        return batch * trainer.world_size * trainer.accumulate_grad_batches

    def peak_lr(self) -> float:
        """The learning rate at the end of warmup."""
        if self.hparams.lr is not None:
            return self.hparams.lr
        return scaled_lr(
            self.hparams.base_lr, self.global_batch_size(), self.hparams.lr_reference_batch
        )

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        """AdamW or Adam over the weight-decay groups; linear warmup then cosine, per step."""
        hp = self.hparams
        groups = param_groups(self.model, hp.weight_decay)
        opt_class = torch.optim.AdamW if hp.optimizer == "adamw" else torch.optim.Adam
        optimizer = opt_class(groups, lr=self.peak_lr(), betas=tuple(hp.betas))
        total = int(self.trainer.estimated_stepping_batches)
        warmup = hp.warmup_steps if hp.warmup_steps is not None else int(hp.warmup_fraction * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup, total, hp.min_lr_ratio)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
