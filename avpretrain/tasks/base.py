"""The common frame of every downstream task: encoders + head, three training modes, LLRD.

A task subclasses :class:`TaskModule`, receives its head as an injected ``nn.Module``
(``class_path`` in YAML), and implements ``training_step`` / ``validation_step`` /
``test_step`` with the metric modules of its benchmark (``torchmetrics.Metric`` collectors,
whose whole-set scores :meth:`TaskModule.epoch_scores` returns). This class owns what every
task shares: loading the encoders (pretrained file or random init, the baseline every table
needs), the freezing mode, the encoders' forward under that mode, logging the epoch's scores, and
the optimiser with layer-wise learning rate decay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics import Metric

from avpretrain.arguments import check_choice
from avpretrain.tasks.backbone import Mode, layer_decay_groups, load_backbone, set_mode
from avpretrain.tasks.segments import segment_inputs
from avpretrain.training.param_groups import param_groups
from avpretrain.training.schedule import warmup_cosine

if TYPE_CHECKING:
    from lightning.pytorch.utilities.parsing import AttributeDict
    from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig

Inputs = Literal["audio", "video", "av"]


def collect(metric: Metric) -> dict[str, Any]:
    """``metric.compute()`` over every rank's updates, then ``metric.reset()``.

    Returns {} when nothing was added since the last reset (an evaluation without batches).
    Every rank must call it (``compute`` syncs the states); Lightning gives every rank the same
    number of evaluation batches.
    """
    scores = metric.compute() if metric.update_called else {}
    metric.reset()
    return scores


class TaskModule(pl.LightningModule):
    """Encoders plus a head, trained as a linear probe, a partial or a full fine-tune.

    Args:
        head: the task's head (an ``nn.Module`` from ``avpretrain.heads``).
        encoders: file written by ``avpretrain export``; None starts from random encoders.
        backbone: AVMAE constructor arguments for random encoders (when ``encoders`` is None).
        mode: ``linear_probe`` (encoders frozen), ``partial`` (last ``trainable_blocks`` layers
            train) or ``finetune`` (all layers, with layer-wise lr decay).
        trainable_blocks: layers trained in ``partial`` mode.
        inputs: which modalities feed the head: ``audio``, ``video`` or ``av``.
        lr: peak learning rate of the head (backbone layers get ``lr * layer_decay ** depth``).
        weight_decay: AdamW weight decay on weight matrices (none on biases, norms, tokens and
            position tables: :mod:`avpretrain.training.param_groups`).
        layer_decay: layer-wise lr decay factor for the backbone (1.0 = none).
        warmup_steps: linear warmup, then cosine decay over the run.
        seed: seed of random encoder initialisation.
    """

    # what save_hyperparameters() stores: the constructor's arguments, read as attributes
    hparams: AttributeDict

    def __init__(
        self,
        head: nn.Module,
        encoders: str | None = None,
        backbone: dict[str, Any] | None = None,
        mode: Mode = "linear_probe",
        trainable_blocks: int = 2,
        inputs: Inputs = "av",
        lr: float = 1e-3,
        weight_decay: float = 0.05,
        layer_decay: float = 0.75,
        warmup_steps: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_choice("mode", mode, Mode)
        check_choice("inputs", inputs, Inputs)
        self.save_hyperparameters(ignore=["head"])
        self.backbone = load_backbone(encoders, backbone, seed)
        set_mode(self.backbone, mode, trainable_blocks)
        self.head = head

    @property
    def frozen(self) -> bool:
        """Whether the backbone is frozen (``mode: linear_probe``)."""
        return self.hparams.mode == "linear_probe"

    def train(self, mode: bool = True) -> TaskModule:
        """Set the train mode; a frozen backbone stays in eval mode (no dropout / drop-path)."""
        super().train(mode)
        if self.frozen:  # a frozen backbone stays in eval mode (no dropout / drop-path)
            self.backbone.eval()
        return self

    def encode(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The backbone's tokens and embeddings for the task's inputs (see ``AVMAE.encode``).

        A missing modality is a mode, not a crash: with ``inputs="av"`` a batch without
        ``video`` (or ``audio``) encodes the modality it has.
        """
        want = self.hparams.inputs
        audio = batch.get("audio") if want in ("audio", "av") else None
        video = batch.get("video") if want in ("video", "av") else None
        if audio is None and video is None:
            raise ValueError(f"batch has none of the inputs {want!r} (keys: {sorted(batch)})")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.backbone.encode(audio=audio, video=video)

    def encode_segments(self, batch: dict[str, Any], num_segments: int) -> dict[str, torch.Tensor]:
        """:meth:`encode` of each of T segments on its own.

        See :func:`~avpretrain.tasks.segments.segment_inputs`. Every output has a leading B T,
        segments of one clip adjacent.
        """
        patch_width = self.backbone.audio_encoder.patch_size[1]
        audio, frames = segment_inputs(batch["audio"], batch["video"], num_segments, patch_width)
        return self.encode({"audio": audio, "video": frames})

    def feature_dim(self) -> int:
        """Width of :meth:`pooled_features` for the configured inputs."""
        dims = {
            "audio": self.backbone.audio_encoder.embed_dim,
            "video": self.backbone.video_encoder.embed_dim,
        }
        inputs = self.hparams.inputs
        return dims["audio"] + dims["video"] if inputs == "av" else dims[inputs]

    def pooled_features(self, batch: dict[str, Any]) -> torch.Tensor:
        """Pooled embeddings of the configured inputs: [B, feature_dim].

        With ``inputs="av"`` the audio and video embeddings are concatenated; a modality the
        batch lacks contributes zeros, so a missing modality is a mode, not a crash.
        """
        enc = self.encode(batch)
        if self.hparams.inputs != "av":
            return enc[f"{self.hparams.inputs}_embedding"]
        ref = enc.get("audio_embedding", enc.get("video_embedding"))
        assert ref is not None  # encode() returns the embedding of at least one modality
        parts = []
        for name in ("audio", "video"):
            encoder = getattr(self.backbone, f"{name}_encoder")
            emb = enc.get(f"{name}_embedding")
            parts.append(emb if emb is not None else ref.new_zeros(ref.shape[0], encoder.embed_dim))
        return torch.cat(parts, dim=-1)

    def epoch_scores(self, stage: str) -> dict[str, float]:
        """Whole-set scores of the evaluation epoch that ends, named without the stage prefix.

        Tasks return their metrics' :func:`collect` here; the frame logs them as
        ``<stage>/<name>`` at the end of every validation and test epoch. None by default.
        """
        return {}

    def on_validation_epoch_end(self) -> None:
        """Log :meth:`epoch_scores` under ``val/``."""
        self.log_dict({f"val/{k}": v for k, v in self.epoch_scores("val").items()})

    def on_test_epoch_end(self) -> None:
        """Log :meth:`epoch_scores` under ``test/``."""
        self.log_dict({f"test/{k}": v for k, v in self.epoch_scores("test").items()})

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        """AdamW over the head's and the backbone's layer-decayed groups; warmup then cosine."""
        hp = self.hparams
        groups = param_groups(self.head, hp.weight_decay)
        groups += layer_decay_groups(self.backbone, hp.lr, hp.weight_decay, hp.layer_decay)
        optimizer = torch.optim.AdamW(groups, lr=hp.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, hp.warmup_steps, total)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
