"""The reconstruction figure: spectrogram and frame, each as input, masked input, reconstruction."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import lightning.pytorch as pl
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from avpretrain.data.loading.video import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from avpretrain.models import AVMAE


def _to_image(frame: torch.Tensor) -> torch.Tensor:
    """``[3, H, W]`` ImageNet-normalised -> ``[H, W, 3]`` in [0, 1]; a clip shows its middle frame."""
    if frame.ndim == 4:  # [3, F, H, W]
        frame = frame[:, frame.shape[1] // 2]
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (frame.float().cpu() * std + mean).clamp(0, 1).permute(1, 2, 0)


@torch.no_grad()
def reconstruction_figure(
    model: AVMAE, audio: torch.Tensor, video: torch.Tensor, seed: int = 0
) -> Figure:
    """Figure of one sample's masked reconstruction (2 rows x 3 columns).

    Args:
        model: an :class:`~avpretrain.models.AVMAE`.
        audio: [1, 1, F, T] normalised fbank.
        video: [1, 3, H, W] or [1, 3, F, H, W] normalised frames.
        seed: seed of the masks drawn.
    """
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=audio.device).manual_seed(seed)
    out = model(audio, video, generator=generator)
    model.train(was_training)
    rec = model.reconstruct(audio, video, out)
    a_masked, a_recon = rec["audio_masked"], rec["audio_recon"]
    v_masked, v_recon = rec["video_masked"], rec["video_recon"]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    titles = ("input", "masked", "reconstruction")
    for ax, spec, title in zip(axes[0], (audio, a_masked, a_recon), titles, strict=True):
        ax.imshow(spec[0, 0].float().cpu(), origin="lower", aspect="auto", cmap="magma")
        ax.set_title(f"audio {title}")
    for ax, frame, title in zip(axes[1], (video, v_masked, v_recon), titles, strict=True):
        ax.imshow(_to_image(frame[0]))
        ax.set_title(f"video {title}")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


class ReconstructionFigure(pl.Callback):
    """Every ``every_n_steps`` steps, draws the first sample of the batch.

    Saves a PNG in the run's folder and sends it to the logger (W&B image, TensorBoard figure).

    Args:
        every_n_steps: interval in optimiser steps.
        dirpath: where PNGs go; default ``<trainer.log_dir or default_root_dir>/reconstructions``.
    """

    def __init__(self, every_n_steps: int = 500, dirpath: str | None = None) -> None:
        self.every_n_steps = every_n_steps
        self.dirpath = dirpath
        self.last_path: Path | None = None

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Every ``every_n_steps`` steps (global rank 0), draw, save and log the figure."""
        step = trainer.global_step
        if not trainer.is_global_zero or step % self.every_n_steps != 0:
            return
        model = cast("AVMAE", pl_module.model)  # the pretraining module's model
        fig = reconstruction_figure(model, batch["audio"][:1], batch["video"][:1])
        root = Path(self.dirpath or trainer.log_dir or trainer.default_root_dir)
        path = root / "reconstructions" / f"step{step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=80)
        self.last_path = path
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image("reconstruction", [str(path)], step=step)
            elif hasattr(getattr(logger, "experiment", None), "add_figure"):
                cast(Any, logger).experiment.add_figure("reconstruction", fig, step)
        plt.close(fig)
