"""Visually conditioned source separation by mix-and-separate (Sound of Pixels).

Each batch of clips is mixed in pairs: clip i's waveform with clip i-1's (the batch rolled by
one), each divided by the number of sources (2) as SoP does, so the mixture is their sum. Each
clip's visual embedding (the video encoder on its frame) selects its own source: the head
predicts a time-frequency mask on the mixture's log-frequency-warped magnitude, trained against
binary targets (or the ideal ratio mask, ``target_rule: ratio``) with a BCE weighted by
``clamp(log1p(|mixture|), 1e-3, 10)``, or (``mask_loss: psa``) with the squared error of the
masked mixture's spectrum against the source's, the phase-sensitive approximation. At
evaluation the mask is unwarped to linear frequency, thresholded at 0.5 (or kept soft),
multiplied with the mixture magnitude and inverted with the mixture phase; SDR / SIR / SAR are
scored against the scaled sources as SoP's ``main.py:calc_metrics`` does
(``avpretrain.metrics.separation``), with the mixture as every estimate for the ``SDR_mix``
baseline. By default the audio encoder is not used: as in SoP, the U-Net reads the spectrogram
itself (``mixture_audio: true`` adds the audio encoder's tokens of the mixture to the U-Net's
decoder). ``mixture: own`` (synthetic world) instead separates one object from its own clip's
mixture, the frame showing that object alone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor, nn

from avpretrain.arguments import check_choice
from avpretrain.data.loading.audio import BatchedFbank, FbankConfig
from avpretrain.metrics.separation import SeparationMetrics
from avpretrain.tasks.base import TaskModule, collect
from avpretrain.tasks.separation_stft import (
    SpectrogramConfig,
    istft,
    stft,
    stft_complex,
    unwarp_frequency,
    warp_frequency,
)

if TYPE_CHECKING:
    from avpretrain.heads.separation import SeparationHead

log = logging.getLogger(__name__)

Mixture = Literal["pairs", "own"]
TargetRule = Literal["half_mixture", "dominant", "ratio"]
MaskLoss = Literal["bce", "psa"]
MaskActivation = Literal["sigmoid", "softmax"]


def mix_pairs(wave: Tensor) -> tuple[Tensor, Tensor]:
    """Mix each clip with the previous one in the batch (SoP's two-source mixtures).

    Args:
        wave: [B, samples] clips' waveforms, B >= 2.

    Returns:
        ``(sources, mixture)``: [B, 2, samples] (clip i, clip i-1, each halved) and their sum
        [B, samples].
    """
    if wave.shape[0] < 2:
        raise ValueError(f"mix-and-separate needs at least 2 clips per batch, got {wave.shape[0]}")
    sources = torch.stack([wave, wave.roll(1, dims=0)], dim=1) / 2
    return sources, sources.sum(dim=1)


def mask_targets(mags: Tensor, mag_mix: Tensor, rule: TargetRule = "half_mixture") -> Tensor:
    """Mask targets: where each source dominates, or (``ratio``) its share of the magnitude.

    Args:
        mags: [B, S, F, T] source magnitudes (S = 2 for ``dominant``).
        mag_mix: [B, F, T] mixture magnitude.
        rule: ``half_mixture`` (SoP: ``mag_n > 0.5 * mag_mix``), ``dominant``
            (``mag_n >= mag_other``) or ``ratio``: the ideal ratio mask
            ``mag_n / sum_k mag_k`` in [0, 1], a soft target (0.5 where every source is silent).

    Returns:
        [B, S, F, T] float, 0/1 (``half_mixture``, ``dominant``) or in [0, 1] (``ratio``).
    """
    check_choice("target rule", rule, TargetRule)
    if rule == "ratio":
        total = mags.sum(dim=1, keepdim=True)
        return torch.where(total > 0, mags / total.clamp_min(1e-10), 1 / mags.shape[1])
    if rule == "half_mixture":
        return (mags > 0.5 * mag_mix[:, None]).float()
    if mags.shape[1] != 2:
        raise ValueError(f"the dominant rule compares 2 sources, got {mags.shape[1]}")
    return (mags >= mags.flip(1)).float()


def exclusive_logits(logits: Tensor) -> Tensor:
    """Logits whose sigmoids are the softmax over sources: masks that sum to one.

    ``out_j = l_j - logsumexp_{k != j} l_k``, the exact logit of ``softmax(l)_j``, so the
    sigmoid, the 0.5 threshold and the BCE with logits apply unchanged.

    Args:
        logits: [B, S, F, T] the head's mask logits, S >= 2.

    Returns:
        [B, S, F, T] logits with ``sum_j sigmoid(out_j) = 1`` in every bin.
    """
    s = logits.shape[1]
    if s < 2:
        raise ValueError(f"masks that sum to one need at least 2 sources, got {s}")
    others = logits[:, None].expand(-1, s, -1, -1, -1)  # [B, S (j), S (k), F, T]
    own = torch.eye(s, dtype=torch.bool, device=logits.device)[None, :, :, None, None]
    return logits - others.masked_fill(own, float("-inf")).logsumexp(dim=2)


def psa_loss(mask: Tensor, sources: Tensor, mixture: Tensor) -> Tensor:
    """Phase-sensitive spectrum approximation (Erdogan et al., ICASSP 2015), truncated.

    The squared error of each estimate ``mask * |X|`` (with the mixture's phase, as inference
    uses it) against the part of the source in the mixture's phase, ``|S| cos(angle S -
    angle X)`` clipped to ``[0, |X|]``: for masks in [0, 1] this is the complex spectral error
    ``|mask X - S|^2`` less a term the mask cannot change, so the loss weighs each bin by the
    energy the SDR of the estimate counts. Normalised by each mixture's energy, so loud and quiet
    mixtures weigh alike as they do in the mean SDR.

    Args:
        mask: [B, S, F, T] masks in [0, 1] on the linear frequency axis.
        sources: [B, S, F, T] complex STFT of the sources.
        mixture: [B, F, T] complex STFT of the mixture.

    Returns:
        scalar: the mean over mixtures of ``sum (mask |X| - target)^2 / (S sum |X|^2)``.
    """
    mag_mix = mixture.abs()[:, None]
    cos = torch.cos(sources.angle() - mixture.angle()[:, None])
    target = torch.minimum((sources.abs() * cos).clamp_min(0), mag_mix)
    error = (mask * mag_mix - target).square().sum(dim=(1, 2, 3))
    energy = mag_mix.square().sum(dim=(1, 2, 3)) * mask.shape[1]
    return (error / energy.clamp_min(1e-8)).mean()


class SeparationTask(TaskModule):
    """Mix-and-separate training of a visually conditioned mask predictor.

    Batches need ``video`` [B, 3, S, S] (one frame per clip) and ``sep_wave`` [B, samples] at
    ``spectrogram.sample_rate`` (from ``avpretrain.tasks.targets.separation``).

    Args:
        head: e.g. ``avpretrain.heads.separation.SeparationHead``; its visual width is bound here.
        mixture: ``pairs`` (mix-and-separate, SoP) or ``own``: separate one object, the batch's
            ``sep_source`` [B, samples], from its own clip's audio (synthetic world:
            ``SynthObjectTargets``, whose frame shows the object alone); the second reference is
            ``sep_rest``, the clip's other sources, estimated with the complementary mask.
        spectrogram: STFT and warp settings (SoP's by default).
        target_rule: ``half_mixture`` (SoP), ``dominant`` or ``ratio`` (the ideal ratio mask as
            a soft BCE target, what a soft mask estimates; see :func:`mask_targets`).
        weighted_loss: weight the BCE by ``clamp(log1p(|mixture|), 1e-3, 10)`` (SoP).
        mask_loss: ``bce`` (SoP: the BCE against ``target_rule``'s masks) or ``psa``: the
            masked mixture's spectral error against the source's (:func:`psa_loss`; the mask
            unwarped to linear frequency first, as at inference; ``target_rule`` and
            ``weighted_loss`` then unused).
        mask_activation: ``sigmoid`` (SoP: each source's mask on its own) or ``softmax``: the
            masks of a mixture's sources sum to one in every bin, so the estimates sum to the
            mixture (mixture consistency) and the head can only move energy from one source to
            the other; at initialisation each estimate is half the mixture, which scores the
            mixture's SDR (:func:`exclusive_logits`); a bias shared by the sources' logits
            cancels. Own mixtures already split this way (the rest gets ``1 - mask``), so
            there the two are the same.
        mask_threshold: binarise the predicted mask at this probability (SoP: 0.5); None keeps
            the soft mask.
        max_scored: score at most this many mixtures per evaluation epoch and rank, the first
            in loader order (None: all). mir_eval's BSS Eval takes about a second per mixture
            on one CPU core, so large validation sets want a cap; the loss still sees all.
        oracle_classes: the oracle check (synthetic world): condition on the batch's
            ``sep_classes`` [B, oracle_classes], the multi-hot of the true classes the frame
            shows (``SeparationTargets(oracle_classes=...)``), instead of the video encoder's
            output, to tell a weak U-Net from weak visual features. None: the video.
        mixture_audio: also give the head the audio encoder's patch tokens of the mixture
            (its log-mel filterbank at ``mixture_fbank``'s rate, through the backbone's audio
            encoder, frozen or trained as ``mode`` says), added to every U-Net decoder level
            (see :class:`~avpretrain.heads.separation.SeparationHead`). Off (SoP): the U-Net
            reads the mixture's spectrogram alone and only the video encoder is used.
        mixture_fbank: the mixture's filterbank settings (None: the AudioSet defaults sized to
            the audio encoder's input, as the loader's ``fbank`` usually is).
        **kwargs: the common frame's arguments (:class:`~avpretrain.tasks.base.TaskModule`);
            ``inputs`` must be ``video`` (the default here).
    """

    head: SeparationHead  # the interface this task calls (bind, forward, ...)

    def __init__(
        self,
        head: nn.Module,
        mixture: Mixture = "pairs",
        spectrogram: SpectrogramConfig | None = None,
        target_rule: TargetRule = "half_mixture",
        weighted_loss: bool = True,
        mask_loss: MaskLoss = "bce",
        mask_activation: MaskActivation = "sigmoid",
        mask_threshold: float | None = 0.5,
        max_scored: int | None = None,
        oracle_classes: int | None = None,
        mixture_audio: bool = False,
        mixture_fbank: FbankConfig | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("inputs", "video")
        super().__init__(head=head, **kwargs)
        if self.hparams.inputs != "video":
            raise ValueError(
                "separation conditions on the video embedding and reads the spectrogram with its "
                f"own U-Net: inputs must be 'video', got {self.hparams.inputs!r}"
            )
        check_choice("mixture", mixture, Mixture)
        check_choice("target_rule", target_rule, TargetRule)
        check_choice("mask_loss", mask_loss, MaskLoss)
        check_choice("mask_activation", mask_activation, MaskActivation)
        if oracle_classes is not None and oracle_classes < 1:
            raise ValueError(f"oracle_classes must be positive, got {oracle_classes}")
        self.oracle_classes = oracle_classes
        if mixture_fbank is not None and not mixture_audio:
            raise ValueError("mixture_fbank is read only with mixture_audio: true")
        self.mixture_fbank = None
        audio_dim = None
        if mixture_audio:
            encoder = self.backbone.audio_encoder
            if mixture_fbank is None:
                rows, cols = encoder.grid_size[-2:]
                height, width = encoder.patch_size
                mixture_fbank = FbankConfig(num_mel_bins=rows * height, target_frames=cols * width)
            self.mixture_fbank = BatchedFbank(mixture_fbank)
            audio_dim = encoder.embed_dim
        self.head.bind(oracle_classes or self.backbone.video_encoder.embed_dim, audio_dim)
        self.mixture, self.spec = mixture, spectrogram or SpectrogramConfig()
        self.target_rule, self.weighted_loss = target_rule, weighted_loss
        self.mask_loss, self.mask_activation = mask_loss, mask_activation
        self.mask_threshold, self.max_scored = mask_threshold, max_scored
        self.metrics = SeparationMetrics()

    def _net_axis(self, x: Tensor) -> Tensor:
        return warp_frequency(x, self.spec.warp_bins) if self.spec.log_freq else x

    def visual_features(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """What selects each clip's source: ``(embedding [B, D], tokens [B, N, D])``.

        The video encoder's pooled embedding and patch tokens (class token left out), or with
        ``oracle_classes`` the true classes (one token, N = 1).
        """
        if self.oracle_classes is None:
            enc = self.encode(batch)
            prefix = self.backbone.video_encoder.num_prefix_tokens
            return enc["video_embedding"], enc["video_tokens"][:, prefix:]
        if "sep_classes" not in batch:
            raise ValueError(
                "oracle_classes needs the batch's sep_classes: give the targets "
                f"oracle_classes={self.oracle_classes} (keys: {sorted(batch)})"
            )
        hot = batch["sep_classes"].float()
        if hot.shape[-1] != self.oracle_classes:
            raise ValueError(
                f"sep_classes has {hot.shape[-1]} classes, the task's oracle_classes is "
                f"{self.oracle_classes}"
            )
        return hot, hot[:, None]

    def mixture_tokens(self, mixture: Tensor) -> Tensor:
        """The audio encoder's patch tokens of ``mixture`` [B, n] on their grid: [B, D, h, w].

        The mixture is resampled from the spectrogram's rate to the filterbank's, and its
        log-mel filterbank encoded; rows are frequency (low to high), columns time.
        """
        assert self.mixture_fbank is not None  # mixture_audio=True builds it
        rate = self.mixture_fbank.cfg.sample_rate
        wave = torchaudio.functional.resample(mixture.float(), self.spec.sample_rate, rate)
        encoder = self.backbone.audio_encoder
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            tokens = self.backbone.encode(audio=self.mixture_fbank(wave))["audio_tokens"]
        rows, cols = encoder.grid_size[-2:]
        patches = tokens[:, encoder.num_prefix_tokens :]
        return patches.transpose(1, 2).reshape(len(patches), -1, rows, cols)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Build the mixtures and predict the masks of the sources the frames select.

        Returns:
            ``logits`` [B, S', F', T] on the network's frequency axis (S' = 2 for ``pairs``,
            1 for ``own``), ``sources`` [B, 2, n], ``mixture`` [B, n], ``mag_mix`` /
            ``phase_mix`` [B, F, T] (linear frequency).
        """
        emb, tokens = self.visual_features(batch)
        wave = batch["sep_wave"].float()
        if self.mixture == "own":
            sources = torch.stack([batch["sep_source"], batch["sep_rest"]], dim=1).float()
            mixture = wave
            visual, tokens = emb[:, None], tokens[:, None]
        else:
            sources, mixture = mix_pairs(wave)
            # source j of mixture i: j = 0 clip i, j = 1 clip i-1
            visual = torch.stack([emb, emb.roll(1, dims=0)], dim=1)  # [B, 2, D]
            tokens = torch.stack([tokens, tokens.roll(1, dims=0)], dim=1)  # [B, 2, N, D]
        mag_mix, phase_mix = stft(mixture, self.spec)
        log_mag = torch.log(self._net_axis(mag_mix).clamp_min(1e-10))[:, None]
        grid = None if self.mixture_fbank is None else self.mixture_tokens(mixture)
        logits = self.head(log_mag, visual, tokens, grid)
        if self.mask_activation == "softmax" and logits.shape[1] > 1:
            logits = exclusive_logits(logits)
        return {
            "logits": logits,
            "sources": sources,
            "mixture": mixture,
            "mag_mix": mag_mix,
            "phase_mix": phase_mix,
        }

    def _loss(self, out: dict[str, Tensor]) -> Tensor:
        if self.mask_loss == "psa":
            mask = self._linear_mask(out["logits"])
            sources = stft_complex(out["sources"][:, : mask.shape[1]], self.spec)
            return psa_loss(mask, sources, torch.polar(out["mag_mix"], out["phase_mix"]))
        mags = self._net_axis(stft(out["sources"], self.spec)[0])
        mag_mix = self._net_axis(out["mag_mix"])
        # own mixtures: only the first source is predicted
        target = mask_targets(mags, mag_mix, self.target_rule)[:, : out["logits"].shape[1]]
        weight = None
        if self.weighted_loss:
            weight = torch.log1p(mag_mix).clamp(1e-3, 10)[:, None].expand_as(target)
        return F.binary_cross_entropy_with_logits(out["logits"].float(), target, weight=weight)

    def _linear_mask(self, logits: Tensor) -> Tensor:
        """Soft masks [B, S, F, T] on the linear frequency axis from the head's logits."""
        mask = torch.sigmoid(logits.float())
        return unwarp_frequency(mask, self.spec.freq_bins) if self.spec.log_freq else mask

    def estimates(self, out: dict[str, Tensor]) -> Tensor:
        """Separated waveforms [B, 2, n] from :meth:`forward`'s output (SoP's inference)."""
        mask = self._linear_mask(out["logits"])
        if self.mask_threshold is not None:
            mask = (mask > self.mask_threshold).float()
        if mask.shape[1] == 1:  # own mixtures: the rest gets the complementary mask
            mask = torch.cat([mask, 1 - mask], dim=1)
        mag = out["mag_mix"][:, None] * mask
        return istft(mag, out["phase_mix"][:, None], self.spec, out["mixture"].shape[-1])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        """Mask loss of one batch's mixtures; logs ``train/loss``."""
        loss = self._loss(self(batch))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["key"]))
        return loss

    def _eval_step(self, batch: dict[str, Any], stage: str) -> None:
        if self.mixture == "pairs" and len(batch["key"]) < 2:
            log.warning("%s: a batch of one clip cannot be mixed; skipped %s", stage, batch["key"])
            return
        out = self(batch)
        self.log(f"{stage}/loss", self._loss(out), batch_size=len(batch["key"]))
        keep = len(batch["key"])
        if self.max_scored is not None:
            keep = min(keep, self.max_scored - self.metrics.seen)
        if keep <= 0:
            return
        ests = self.estimates({k: v[:keep] for k, v in out.items()})
        self.metrics.update(out["sources"][:keep].cpu(), ests.cpu(), out["mixture"][:keep].cpu())

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Log ``val/loss``; score the separated sources of up to ``max_scored`` mixtures."""
        self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """As :meth:`validation_step`, under ``test/``."""
        self._eval_step(batch, "test")

    def epoch_scores(self, stage: str) -> dict[str, float]:
        """Mean ``SDR``, ``SIR``, ``SAR`` (and ``SDR_mix``) over every rank's scored mixtures."""
        scores = collect(self.metrics)
        skipped = scores.get("skipped", 0.0)
        if skipped:
            log.info("%s: %d mixtures skipped as silent (as SoP's calc_metrics)", stage, skipped)
        if not scores.get("count"):
            return {}
        out = {"SDR": scores["sdr"], "SIR": scores["sir"], "SAR": scores["sar"]}
        if "sdr_mix" in scores:
            out["SDR_mix"] = scores["sdr_mix"]
        return {**out, "skipped": skipped}
