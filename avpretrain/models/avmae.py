"""Audio-visual masked autoencoder: two ViT encoders, optional fusion layers, two MAE decoders.

The loss is the ACAV-1M paper's: a masked reconstruction term per modality, each averaged over
its own masked patches, plus an optional InfoNCE term between the modalities (CAV-MAE).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, is_dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from avpretrain.arguments import check_choice
from avpretrain.models.audio_views import shifted_view
from avpretrain.models.decoder import MAEDecoder
from avpretrain.models.losses import denormalize_prediction, info_nce, masked_mse
from avpretrain.models.masking import (
    AudioMaskMode,
    check_ratio,
    random_masking,
    structured_audio_masking,
)
from avpretrain.models.video_views import augmented_view
from avpretrain.models.vit import (
    LN_EPS,
    Pool,
    ViTConfig,
    ViTEncoder,
    init_mae_weights,
    make_blocks,
)

# which tokens the contrastive pair pools (see AVMAE's ``contrastive_input``)
ContrastiveInput = Literal["masked", "full"]
# how the audio-visual InfoNCE trains the encoders (see AVMAE's ``contrastive_mode``)
ContrastiveMode = Literal["symmetric", "audio_teacher"]


@dataclass
class AVMAEOutput:
    """What one :meth:`AVMAE.forward` returns.

    Attributes:
        loss: 0-dim total, ``w_a * loss_audio + w_v * loss_video + w_c * loss_contrastive
            + w_view * loss_audio_view + w_vview * loss_video_view``.
        loss_audio: 0-dim masked MSE of the audio patches.
        loss_video: 0-dim masked MSE of the video patches.
        loss_contrastive: 0-dim InfoNCE (0 when disabled).
        loss_audio_view: 0-dim InfoNCE between two views of each clip's audio (0 when
            disabled).
        loss_video_view: 0-dim InfoNCE between two views of each clip's frames (0 when
            disabled).
        pred_audio: [B, Na, Pa] predicted audio patches (normalised space with norm_pix_loss).
        pred_video: [B, Nv, Pv] predicted video patches.
        mask_audio: [B, Na], 1 for masked patches.
        mask_video: [B, Nv], 1 for masked patches.
    """

    loss: Tensor
    loss_audio: Tensor
    loss_video: Tensor
    loss_contrastive: Tensor
    loss_audio_view: Tensor
    loss_video_view: Tensor
    pred_audio: Tensor
    pred_video: Tensor
    mask_audio: Tensor
    mask_video: Tensor


def pool_patch_tokens(tokens: Tensor, num_prefix_tokens: int) -> Tensor:
    """Mean over the patch tokens, prefix (class) tokens excluded: [B, T, D] -> [B, D]."""
    return tokens[:, num_prefix_tokens:].mean(dim=1)


class AVMAE(nn.Module):
    """Dual-encoder audio-visual masked autoencoder (ViT-B defaults: CAV-MAE / AudioMAE / MAE).

    Args:
        encoder: width/depth of both encoders, a preset name ("tiny", "small", "base",
            "large") or a ViTConfig.
        decoder: width/depth of both decoders ("tiny_decoder", "base_decoder" or a ViTConfig).
        audio_encoder: overrides ``encoder`` for the audio encoder when given.
        video_encoder: overrides ``encoder`` for the video encoder when given.
        audio_shape: (mel bins, frames) of the fbank input the audio encoder is built for.
        video_size: frame height and width the video encoder is built for.
        num_frames: frames per video clip; 1 takes [B, 3, H, W] frames.
        tubelet: frames per video patch (Conv3d tubelets when > 1, as VideoMAE).
        patch_size: square patch side, for both modalities unless ``video_patch_size`` is set.
        video_patch_size: the video encoder's patch side (None: ``patch_size``). Small frames
            need small patches to resolve shape: on 64-pixel frames 16-pixel patches leave a
            4 x 4 grid, and even supervised training of the tiny video encoder barely learns
            which objects are on screen; 8-pixel patches (the tiny recipe) do.
        mask_ratio_audio: fraction of audio patches masked (AudioMAE: 0.8).
        mask_ratio_video: fraction of video patches masked (MAE: 0.75).
        audio_mask_mode: "random", or structured "time", "frequency", "time_frequency".
        fusion_layers: joint transformer layers over the concatenated visible tokens of both
            modalities (with learned modality embeddings); 0 keeps the encoders independent.
        norm_pix_loss: reconstruct per-patch normalised targets (MAE's default).
        weight_audio: weight of the audio reconstruction loss.
        weight_video: weight of the video reconstruction loss.
        contrastive_weight: weight of the audio-visual InfoNCE term (CAV-MAE: 0.01); 0 disables.
        contrastive_tau: InfoNCE temperature (CAV-MAE: 0.05).
        contrastive_input: ``"masked"`` (CAV-MAE: the contrastive pair pools the visible tokens
            of the reconstruction pass) or ``"full"`` (a second, unmasked encoder pass): with few
            patches (the tiny CPU recipe has 16 per frame, 4 of them visible) the masked pair
            often misses the sounding object, and the unmasked one learns far faster. Only
            the ``"symmetric"`` mode uses it.
        contrastive_mode: ``"symmetric"`` (CAV-MAE: both encoders learn to match each other)
            or ``"audio_teacher"``, a cross-modal distillation: the clip's unmasked audio
            embedding is a target that no gradient reaches, and the video embedding of an
            augmented view of the frames (:func:`~avpretrain.models.video_views.augmented_view`)
            learns to match it, so the video tokens live in the audio embedding's space (as
            with the symmetric term, which the localization maps need). The audio encoder learns
            from its own terms (reconstruction, ``audio_view_weight``); the video encoder then
            learns what the sound names. In the synthetic world this teaches the tiny video
            encoder which objects are on screen, which neither reconstruction nor video views
            do in CPU minutes (README, "Does pretraining help?").
        audio_view_weight: weight of the within-audio InfoNCE between two random views of each
            clip's spectrogram (:func:`~avpretrain.models.audio_views.shifted_view`: a mel-axis
            shift and a time roll); 0 disables. It makes the audio embedding ignore pitch and
            timing, which the tiny CPU recipe needs to name sounds within minutes.
        audio_view_shift: largest mel-bin shift of a view.
        audio_view_tau: temperature of that InfoNCE.
        video_view_weight: weight of the within-video InfoNCE between two random views of each
            clip's frames (:func:`~avpretrain.models.video_views.augmented_view`: colour
            permutation and gains, greyscale, a resized crop and a flip); 0 disables. It makes
            the video embedding ignore colour and position, the synthetic world's nuisance.
        video_view_scale: smallest crop area of a video view, as a fraction of the frame (the
            views term's and the ``audio_teacher`` distillation's).
        video_view_tau: temperature of that InfoNCE.
        cls_token: give both encoders a class token (MAE, AudioMAE); CAV-MAE has none, so
            importing its weights needs ``False``.
        audio_pool: how the audio embedding pools the tokens: ``"mean"`` (ours), ``"cls"`` or
            ``"fc_norm"`` (the global pool of MAE / AudioMAE fine-tuned checkpoints); see
            :class:`~avpretrain.models.vit.ViTEncoder`.
        video_pool: the same for the video encoder.
    """

    def __init__(
        self,
        encoder: str | ViTConfig = "base",
        decoder: str | ViTConfig = "base_decoder",
        audio_encoder: str | ViTConfig | None = None,
        video_encoder: str | ViTConfig | None = None,
        audio_shape: tuple[int, int] = (128, 1024),
        video_size: int = 224,
        num_frames: int = 1,
        tubelet: int = 1,
        patch_size: int = 16,
        video_patch_size: int | None = None,
        mask_ratio_audio: float = 0.8,
        mask_ratio_video: float = 0.75,
        audio_mask_mode: AudioMaskMode = "random",
        fusion_layers: int = 0,
        norm_pix_loss: bool = True,
        weight_audio: float = 1.0,
        weight_video: float = 1.0,
        contrastive_weight: float = 0.0,
        contrastive_tau: float = 0.05,
        contrastive_input: ContrastiveInput = "masked",
        contrastive_mode: ContrastiveMode = "symmetric",
        audio_view_weight: float = 0.0,
        audio_view_shift: int = 12,
        audio_view_tau: float = 0.1,
        video_view_weight: float = 0.0,
        video_view_scale: float = 0.5,
        video_view_tau: float = 0.1,
        cls_token: bool = True,
        audio_pool: Pool = "mean",
        video_pool: Pool = "mean",
    ) -> None:
        super().__init__()
        # the constructor arguments, so exported encoders can be rebuilt without the recipe
        self.config = {
            k: asdict(v) if is_dataclass(v) and not isinstance(v, type) else v
            for k, v in locals().items()
            if k not in ("self", "__class__")
        }
        check_choice("audio_mask_mode", audio_mask_mode, AudioMaskMode)
        check_ratio(mask_ratio_audio)
        check_ratio(mask_ratio_video)
        audio_cfg = ViTConfig.resolve(audio_encoder if audio_encoder is not None else encoder)
        video_cfg = ViTConfig.resolve(video_encoder if video_encoder is not None else encoder)
        joint = fusion_layers > 0 or contrastive_weight > 0
        if joint and audio_cfg.embed_dim != video_cfg.embed_dim:
            raise ValueError(
                "fusion and the contrastive term need equal encoder widths, got audio "
                f"{audio_cfg.embed_dim} and video {video_cfg.embed_dim}"
            )
        self.mask_ratio_audio = mask_ratio_audio
        self.mask_ratio_video = mask_ratio_video
        self.audio_mask_mode = audio_mask_mode
        self.norm_pix_loss = norm_pix_loss
        self.weight_audio = weight_audio
        self.weight_video = weight_video
        self.contrastive_weight = contrastive_weight
        self.contrastive_tau = contrastive_tau
        check_choice("contrastive_input", contrastive_input, ContrastiveInput)
        self.contrastive_input = contrastive_input
        check_choice("contrastive_mode", contrastive_mode, ContrastiveMode)
        self.contrastive_mode = contrastive_mode
        if audio_view_weight > 0 and not 0 <= audio_view_shift < audio_shape[0]:
            raise ValueError(
                f"audio_view_shift must be in [0, {audio_shape[0]}) mel bins, got {audio_view_shift}"
            )
        self.audio_view_weight = audio_view_weight
        self.audio_view_shift = audio_view_shift
        self.audio_view_tau = audio_view_tau
        if video_view_weight > 0 and not 0 < video_view_scale <= 1:
            raise ValueError(f"video_view_scale must be in (0, 1], got {video_view_scale}")
        self.video_view_weight = video_view_weight
        self.video_view_scale = video_view_scale
        self.video_view_tau = video_view_tau
        # all-gather contrastive negatives across ranks; off only for single-process analysis
        # such as FLOP counting on the meta device, where collectives cannot run
        self.gather_negatives = True

        patch = (patch_size, patch_size)
        video_patch = (video_patch_size or patch_size,) * 2
        self.audio_encoder = ViTEncoder(
            (audio_shape[0], audio_shape[1]),
            patch,
            1,
            audio_cfg,
            cls_token=cls_token,
            pool=audio_pool,
        )
        self.video_encoder = ViTEncoder(
            (video_size, video_size),
            video_patch,
            3,
            video_cfg,
            num_frames=num_frames,
            tubelet=tubelet,
            cls_token=cls_token,
            pool=video_pool,
        )
        self.fusion = make_blocks(
            ViTConfig(audio_cfg.embed_dim, fusion_layers, audio_cfg.num_heads, audio_cfg.mlp_ratio)
        )
        if fusion_layers > 0:
            dim = audio_cfg.embed_dim
            self.fusion_norm = nn.LayerNorm(dim, eps=LN_EPS)
            self.audio_modality_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.video_modality_token = nn.Parameter(torch.zeros(1, 1, dim))
            self.fusion.apply(init_mae_weights)
            self.fusion_norm.apply(init_mae_weights)
            nn.init.normal_(self.audio_modality_token, std=0.02)
            nn.init.normal_(self.video_modality_token, std=0.02)
        self.audio_decoder = self._decoder(self.audio_encoder, decoder)
        self.video_decoder = self._decoder(self.video_encoder, decoder)

    @staticmethod
    def _decoder(encoder: ViTEncoder, config: str | ViTConfig) -> MAEDecoder:
        return MAEDecoder(
            encoder.grid_size,
            encoder.embed_dim,
            encoder.patch_dim,
            config,
            encoder.num_prefix_tokens,
        )

    def _fuse(
        self, audio: Tensor | None, video: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        """Joint fusion layers over ``[audio; video]`` tokens (either may be None)."""
        if len(self.fusion) == 0:
            return audio, video
        parts = []
        if audio is not None:
            parts.append(audio + self.audio_modality_token)
        if video is not None:
            parts.append(video + self.video_modality_token)
        x = torch.cat(parts, dim=1)
        for block in self.fusion:
            x = block(x)
        x = self.fusion_norm(x)
        if audio is None:
            return None, x
        return x[:, : audio.shape[1]], (x[:, audio.shape[1] :] if video is not None else None)

    def _contrastive_embeddings(self, audio: Tensor, video: Tensor) -> tuple[Tensor, Tensor]:
        """Pooled embeddings of the visible tokens, each modality through fusion on its own.

        As CAV-MAE: the contrastive pair comes from the masked inputs (one forward pass, no
        extra unmasked pass), and fusion layers see one modality at a time here, since jointly
        fused audio tokens have already attended to their paired video, which would make the
        matching task trivial.
        """
        fused_audio, _ = self._fuse(audio, None)
        _, fused_video = self._fuse(None, video)
        assert fused_audio is not None and fused_video is not None  # each modality was given
        return (
            pool_patch_tokens(fused_audio, self.audio_encoder.num_prefix_tokens),
            pool_patch_tokens(fused_video, self.video_encoder.num_prefix_tokens),
        )

    def forward(
        self, audio: Tensor, video: Tensor, generator: torch.Generator | None = None
    ) -> AVMAEOutput:
        """Mask, encode, (fuse), decode and score both modalities.

        Args:
            audio: [B, 1, F, T] fbank.
            video: [B, 3, H, W] frames, or [B, 3, F, H, W] clips.
            generator: random source of the masks (for reproducible validation).

        Returns:
            :class:`AVMAEOutput`.
        """
        if audio.shape[0] != video.shape[0]:
            raise ValueError(f"audio batch {audio.shape[0]} != video batch {video.shape[0]}")
        batch = audio.shape[0]
        grid_a = self.audio_encoder.grid_for(audio)
        grid_v = self.video_encoder.grid_for(video)
        keep_a, mask_a, restore_a = structured_audio_masking(
            batch,
            (grid_a[0], grid_a[1]),  # a spectrogram's grid is (frequency, time)
            self.mask_ratio_audio,
            self.audio_mask_mode,
            generator,
            audio.device,
        )
        keep_v, mask_v, restore_v = random_masking(
            batch, math.prod(grid_v), self.mask_ratio_video, generator, video.device
        )
        tokens_a = self.audio_encoder.forward_features(audio, keep_a)
        tokens_v = self.video_encoder.forward_features(video, keep_v)
        fused_a, fused_v = self._fuse(tokens_a, tokens_v)
        pred_a = self.audio_decoder(fused_a, restore_a, grid_a)
        pred_v = self.video_decoder(fused_v, restore_v, grid_v)
        target_a = self.audio_encoder.patchify(audio)
        target_v = self.video_encoder.patchify(video)
        loss_a = masked_mse(pred_a, target_a, mask_a, self.norm_pix_loss)
        loss_v = masked_mse(pred_v, target_v, mask_v, self.norm_pix_loss)
        if self.contrastive_weight > 0 and self.contrastive_mode == "audio_teacher":
            loss_c = self._distillation_loss(audio, video, generator)
        elif self.contrastive_weight > 0:
            if self.contrastive_input == "full":
                tokens_a = self.audio_encoder.forward_features(audio)
                tokens_v = self.video_encoder.forward_features(video)
            emb_a, emb_v = self._contrastive_embeddings(tokens_a, tokens_v)
            loss_c = info_nce(emb_a, emb_v, self.contrastive_tau, gather=self.gather_negatives)
        else:
            loss_c = torch.zeros((), device=loss_a.device)
        zero = torch.zeros((), device=loss_a.device)
        loss_av = self._view_loss(audio, generator, True) if self.audio_view_weight > 0 else zero
        loss_vv = self._view_loss(video, generator, False) if self.video_view_weight > 0 else zero
        loss = (
            self.weight_audio * loss_a
            + self.weight_video * loss_v
            + self.contrastive_weight * loss_c
            + self.audio_view_weight * loss_av
            + self.video_view_weight * loss_vv
        )
        return AVMAEOutput(
            loss, loss_a, loss_v, loss_c, loss_av, loss_vv, pred_a, pred_v, mask_a, mask_v
        )

    def _distillation_loss(
        self, audio: Tensor, video: Tensor, generator: torch.Generator | None
    ) -> Tensor:
        """InfoNCE from the embedding of a view of the frames to the clip's audio embedding.

        Args:
            audio: [B, 1, F, T] spectrograms, encoded unmasked without gradient (the target).
            video: [B, 3, H, W] or [B, 3, F, H, W] frames, of which one
                :func:`augmented_view` is encoded.
            generator: random source of the view.

        Each modality goes through the fusion layers on its own, as the contrastive pair does.
        """
        with torch.no_grad():
            tokens_a = self.audio_encoder.forward_features(audio)
        view = augmented_view(video, self.video_view_scale, generator)
        emb_a, emb_v = self._contrastive_embeddings(
            tokens_a, self.video_encoder.forward_features(view)
        )
        return info_nce(emb_a.detach(), emb_v, self.contrastive_tau, gather=self.gather_negatives)

    def _view_loss(self, x: Tensor, generator: torch.Generator | None, audio: bool) -> Tensor:
        """InfoNCE between the pooled, unmasked embeddings of two random views of each clip.

        Args:
            x: [B, 1, F, T] spectrograms (``audio``: :func:`shifted_view`) or [B, 3, H, W] /
                [B, 3, F, H, W] frames (:func:`augmented_view`).
            generator: random source of the views.
            audio: which modality ``x`` is.

        Each view goes through the fusion layers on its own, as the contrastive pair does.
        """
        encoder = self.audio_encoder if audio else self.video_encoder
        embeddings = []
        for _ in range(2):
            if audio:
                view = shifted_view(x, self.audio_view_shift, generator)
                tokens, _ = self._fuse(encoder.forward_features(view), None)
            else:
                view = augmented_view(x, self.video_view_scale, generator)
                _, tokens = self._fuse(None, encoder.forward_features(view))
            assert tokens is not None  # the modality was given
            embeddings.append(pool_patch_tokens(tokens, encoder.num_prefix_tokens))
        tau = self.audio_view_tau if audio else self.video_view_tau
        return info_nce(embeddings[0], embeddings[1], tau, gather=self.gather_negatives)

    @torch.no_grad()
    def reconstruct(self, audio: Tensor, video: Tensor, out: AVMAEOutput) -> dict[str, Tensor]:
        """Inputs and reconstructions for figures (visible patches pasted from the input).

        With norm_pix_loss, predicted patches are de-normalised with the true patches' mean
        and variance, as MAE's visualisations do.

        Returns:
            ``audio_masked`` / ``video_masked``: the inputs with masked patches zeroed;
            ``audio_recon`` / ``video_recon``: the reconstructions; all in input layout.
        """
        result = {}
        pairs = (
            ("audio", self.audio_encoder, audio, out.pred_audio, out.mask_audio),
            ("video", self.video_encoder, video, out.pred_video, out.mask_video),
        )
        for name, encoder, x, pred, mask in pairs:
            grid = encoder.grid_for(x)
            target = encoder.patchify(x).float()
            if self.norm_pix_loss:
                recon = denormalize_prediction(pred, target, mask)
            else:
                recon = torch.where(mask[..., None].bool(), pred.float(), target)
            result[f"{name}_masked"] = encoder.unpatchify(target * (1 - mask[..., None]), grid)
            result[f"{name}_recon"] = encoder.unpatchify(recon, grid)
        return result

    def encode(self, audio: Tensor | None = None, video: Tensor | None = None) -> dict[str, Tensor]:
        """Unmasked tokens and pooled embeddings for downstream heads; either input may be None.

        With fusion layers, given modalities are fused jointly (a single one on its own).

        Args:
            audio: [B, 1, F, T] or None.
            video: [B, 3, H, W] / [B, 3, F, H, W] or None.

        Returns:
            ``audio_tokens`` [B, prefix + Na, D] and ``audio_embedding`` [B, D] (the audio
            encoder's :meth:`~avpretrain.models.vit.ViTEncoder.pool_tokens`) when audio is given, the same ``video_*`` keys for video, and when
            both are given with equal widths ``tokens`` (the concatenation) and ``embedding``
            (mean over the patch tokens of both).
        """
        if audio is None and video is None:
            raise ValueError("encode needs audio, video or both")
        tokens_a = self.audio_encoder.forward_features(audio) if audio is not None else None
        tokens_v = self.video_encoder.forward_features(video) if video is not None else None
        tokens_a, tokens_v = self._fuse(tokens_a, tokens_v)
        out: dict[str, Tensor] = {}
        prefix_a = self.audio_encoder.num_prefix_tokens
        prefix_v = self.video_encoder.num_prefix_tokens
        if tokens_a is not None:
            out["audio_tokens"] = tokens_a
            out["audio_embedding"] = self.audio_encoder.pool_tokens(tokens_a)
        if tokens_v is not None:
            out["video_tokens"] = tokens_v
            out["video_embedding"] = self.video_encoder.pool_tokens(tokens_v)
        if (
            tokens_a is not None
            and tokens_v is not None
            and tokens_a.shape[-1] == tokens_v.shape[-1]
        ):
            out["tokens"] = torch.cat([tokens_a, tokens_v], dim=1)
            patches = torch.cat([tokens_a[:, prefix_a:], tokens_v[:, prefix_v:]], dim=1)
            out["embedding"] = patches.mean(dim=1)
        return out
