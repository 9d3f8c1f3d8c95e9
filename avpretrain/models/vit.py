"""Vision Transformer encoder: configs, the pre-norm block and the patch-token encoder.

Parameter names equal timm's ``VisionTransformer`` (``cls_token``, ``pos_embed``,
``patch_embed.proj``, ``blocks.i.norm1``, ``blocks.i.attn.qkv``, ..., ``norm``), so MAE, timm,
AudioMAE and CAV-MAE encoder weights load by name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avpretrain.arguments import check_choice
from avpretrain.models.patch_embed import PatchEmbed, patchify, unpatchify
from avpretrain.models.pos_embed import pos_embed_for_grid, sincos_pos_embed

LN_EPS = 1e-6
# how a clip embedding is pooled from the tokens (see ViTEncoder's ``pool``)
Pool = Literal["mean", "cls", "fc_norm"]


@dataclass
class ViTConfig:
    """Width and depth of a transformer stack.

    Args:
        embed_dim: token width.
        depth: number of blocks.
        num_heads: attention heads (must divide ``embed_dim``).
        mlp_ratio: MLP hidden width as a multiple of ``embed_dim``.
    """

    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} not divisible by {self.num_heads} heads")

    @classmethod
    def preset(cls, name: str) -> ViTConfig:
        """A named config: tiny, small, base, large (encoders); tiny_decoder, base_decoder."""
        if name not in PRESETS:
            raise ValueError(f"unknown ViT preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**PRESETS[name])

    @classmethod
    def resolve(cls, config: str | ViTConfig | dict) -> ViTConfig:
        """A config given as a preset name, a config, or its fields.

        Exported encoder files record a config given as an object by its fields.
        """
        if isinstance(config, dict):
            return cls(**config)
        return cls.preset(config) if isinstance(config, str) else config


PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(embed_dim=64, depth=2, num_heads=4),  # CPU tests and the demo
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
    "large": dict(embed_dim=1024, depth=24, num_heads=16),
    "tiny_decoder": dict(embed_dim=32, depth=1, num_heads=4),
    "base_decoder": dict(embed_dim=512, depth=8, num_heads=16),
}


def init_mae_weights(module: nn.Module) -> None:
    """MAE's init, for ``module.apply``: xavier-uniform Linear, zero bias, unit LayerNorm."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def drop_path(x: Tensor, prob: float, training: bool) -> Tensor:
    """Stochastic depth: drop the whole residual branch per sample, rescale the survivors."""
    if prob == 0.0 or not training:
        return x
    keep = 1.0 - prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    return x * x.new_empty(shape).bernoulli_(keep) / keep


class Attention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention``."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """[B, N, D] -> [B, N, D]."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, N, head_dim]
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    """Two-layer GELU MLP."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` [..., dim] through fc1, GELU and fc2."""
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block, parameter names as timm's ViT ``Block``.

    Args:
        dim: token width.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width over ``dim``.
        qkv_bias: bias on the query/key/value projection.
        drop_path: stochastic-depth probability of each residual branch.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path_prob = drop_path

    def forward(self, x: Tensor) -> Tensor:
        """[B, N, D] -> [B, N, D]."""
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path_prob, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path_prob, self.training)


def make_blocks(config: ViTConfig, drop_path_rate: float = 0.0) -> nn.ModuleList:
    """``config.depth`` blocks with stochastic depth rising linearly to ``drop_path_rate``."""
    rates = torch.linspace(0, drop_path_rate, config.depth).tolist() if config.depth else []
    return nn.ModuleList(
        Block(config.embed_dim, config.num_heads, config.mlp_ratio, drop_path=r) for r in rates
    )


class ViTEncoder(nn.Module):
    """ViT over patches of an image, spectrogram or clip, with fixed sin-cos positions.

    Inputs are [B, C, H, W] (spectrograms are [B, 1, F, T]: the grid is (F/ph, T/pw)), or
    [B, C, F, H, W] clips when ``num_frames > 1`` or ``tubelet > 1`` (Conv3d tubelets).
    Inputs of another size than the built one (other clip lengths, frame sizes) get resized
    position embeddings (see :func:`~avpretrain.models.pos_embed.pos_embed_for_grid`).

    Args:
        img_size: (H, W) the position table is built for.
        patch_size: (ph, pw).
        in_chans: input channels.
        config: width/depth, a :class:`ViTConfig` or a preset name.
        num_frames: frames per clip the table is built for.
        tubelet: frames per patch.
        cls_token: prepend a learned class token (with a zero position, as MAE).
        drop_path_rate: stochastic depth of the last block (0 for MAE pretraining).
        pool: the clip embedding (:meth:`pool_tokens`): ``"mean"`` of the normed patch
            tokens (MAE pretraining, ours); ``"cls"`` the normed class token (timm's default
            ``global_pool="token"``); ``"fc_norm"`` the mean of the un-normed patch tokens
            through ``fc_norm`` (MAE / AudioMAE fine-tuning with ``global_pool``, timm's
            ``global_pool="avg"``): then there is no per-token ``norm`` (an identity), as there.

    Attributes:
        grid_size: built patch grid, (rows, cols) or (time, rows, cols).
        num_patches: ``prod(grid_size)``.
        num_prefix_tokens: 1 with a class token, else 0.
        embed_dim: token width D.
        patch_size: (ph, pw).
        patch_dim: pixels per patch P of :meth:`patchify`.
        is_clip: whether inputs are [B, C, F, H, W] clips.
    """

    def __init__(
        self,
        img_size: tuple[int, int],
        patch_size: tuple[int, int] = (16, 16),
        in_chans: int = 3,
        config: ViTConfig | str = "base",
        num_frames: int = 1,
        tubelet: int = 1,
        cls_token: bool = True,
        drop_path_rate: float = 0.0,
        pool: Pool = "mean",
    ) -> None:
        super().__init__()
        config = ViTConfig.resolve(config)
        if num_frames % tubelet:
            raise ValueError(f"num_frames {num_frames} is not divisible by tubelet {tubelet}")
        check_choice("pool", pool, Pool)
        if pool == "cls" and not cls_token:
            raise ValueError("pool='cls' needs a class token (cls_token=True)")
        self.pool = pool
        self.config = config
        self.embed_dim = config.embed_dim
        self.patch_size = cast("tuple[int, int]", tuple(patch_size))
        self.tubelet = tubelet
        self.is_clip = num_frames > 1 or tubelet > 1
        self.num_prefix_tokens = 1 if cls_token else 0
        self.patch_embed = PatchEmbed(
            self.patch_size, in_chans, self.embed_dim, tubelet if self.is_clip else None
        )
        shape = (1, in_chans, *((num_frames,) if self.is_clip else ()), *img_size)
        self.grid_size = self.patch_embed.grid_for(shape)
        self.num_patches = math.prod(self.grid_size)
        self.patch_dim = in_chans * math.prod(self.patch_size) * (tubelet if self.is_clip else 1)
        if cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        else:
            self.register_parameter("cls_token", None)
        # A frozen Parameter, not a buffer: state dicts carry it and imports may overwrite it.
        table = sincos_pos_embed(self.embed_dim, self.grid_size, self.num_prefix_tokens)
        self.pos_embed = nn.Parameter(table, requires_grad=False)
        self.blocks = make_blocks(config, drop_path_rate)
        self.norm = nn.Identity() if pool == "fc_norm" else nn.LayerNorm(self.embed_dim, eps=LN_EPS)
        self.fc_norm = nn.LayerNorm(self.embed_dim, eps=LN_EPS) if pool == "fc_norm" else None
        self._init_weights()

    def _init_weights(self) -> None:
        self.apply(init_mae_weights)
        weight = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))  # as a Linear layer (MAE)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=0.02)

    def _as_input(self, x: Tensor) -> Tensor:
        # Single-frame encoders also take [B, C, 1, H, W] clips.
        if not self.is_clip and x.ndim == 5 and x.shape[2] == 1:
            return x[:, :, 0]
        return x

    def grid_for(self, x: Tensor) -> tuple[int, ...]:
        """Patch grid of an input: (rows, cols), or (time, rows, cols) for clips."""
        return self.patch_embed.grid_for(self._as_input(x).shape)

    def pos_embed_for(self, grid: tuple[int, ...]) -> Tensor:
        """Position table for a patch grid: [1, prefix + prod(grid), D]."""
        return pos_embed_for_grid(self.pos_embed, self.grid_size, grid, self.num_prefix_tokens)

    def patchify(self, x: Tensor) -> Tensor:
        """Reconstruction target: [B, C, H, W] / [B, C, F, H, W] -> [B, N, P], token order."""
        return patchify(self._as_input(x), self.patch_size, self.tubelet)

    def unpatchify(self, patches: Tensor, grid: tuple[int, ...] | None = None) -> Tensor:
        """[B, N, P] -> [B, C, H, W] (or clips); ``grid`` defaults to the built grid."""
        return unpatchify(patches, grid or self.grid_size, self.patch_size, self.tubelet)

    def _embed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self._as_input(x)
        pos = self.pos_embed_for(self.grid_for(x))
        prefix = self.num_prefix_tokens
        return self.patch_embed(x) + pos[:, prefix:], pos[:, :prefix]

    def embed(self, x: Tensor) -> Tensor:
        """Patch tokens plus positions, no class token: [B, N, D]."""
        return self._embed(x)[0]

    def forward_features(self, x: Tensor, ids_keep: Tensor | None = None) -> Tensor:
        """Encode all patches, or only the kept ones.

        Args:
            x: [B, C, H, W] or [B, C, F, H, W].
            ids_keep: [B, K] indices of the patches to encode (row-major grid order).

        Returns:
            [B, prefix + K, D] (K = N without ``ids_keep``) after the final norm; the class
            token, if any, comes first.
        """
        tokens, prefix_pos = self._embed(x)
        if ids_keep is not None:
            index = ids_keep[..., None].expand(-1, -1, tokens.shape[-1])
            tokens = torch.gather(tokens, 1, index)
        if self.cls_token is not None:
            cls = (self.cls_token + prefix_pos).expand(tokens.shape[0], -1, -1)
            tokens = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def pool_tokens(self, tokens: Tensor) -> Tensor:
        """Clip embedding of :meth:`forward_features`' tokens [B, prefix + N, D] -> [B, D].

        Pooled as ``pool`` says (the mean excludes the class token).
        """
        if self.pool == "cls":
            return tokens[:, 0]
        pooled = tokens[:, self.num_prefix_tokens :].mean(dim=1)
        return self.fc_norm(pooled) if self.fc_norm is not None else pooled

    def forward_embedding(self, x: Tensor) -> Tensor:
        """Pooled embedding of all patches (:meth:`pool_tokens`): [B, D]."""
        return self.pool_tokens(self.forward_features(x))

    def forward(self, x: Tensor) -> Tensor:
        """Same as :meth:`forward_features` without masking: [B, prefix + N, D]."""
        return self.forward_features(x)
