"""MAE decoder: fills the masked positions with a mask token and predicts their pixels.

Parameter names are MAE's (``decoder_embed``, ``mask_token``, ``decoder_pos_embed``,
``decoder_blocks``, ``decoder_norm``, ``decoder_pred``) so MAE decoder weights load by name.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from avpretrain.models.pos_embed import pos_embed_for_grid, sincos_pos_embed
from avpretrain.models.vit import LN_EPS, ViTConfig, init_mae_weights, make_blocks


class MAEDecoder(nn.Module):
    """Lightweight transformer decoder of one modality.

    Args:
        grid_size: the patch grid of the encoder, (rows, cols) or (time, rows, cols).
        encoder_dim: width of the encoder tokens it receives.
        patch_dim: pixels per patch P (the prediction width).
        config: decoder width/depth, a :class:`ViTConfig` or a preset name.
        num_prefix_tokens: prefix (class) tokens at the front of the encoder sequence.
    """

    def __init__(
        self,
        grid_size: tuple[int, ...],
        encoder_dim: int,
        patch_dim: int,
        config: ViTConfig | str = "base_decoder",
        num_prefix_tokens: int = 1,
    ) -> None:
        super().__init__()
        config = ViTConfig.resolve(config)
        self.grid_size = tuple(grid_size)
        self.num_prefix_tokens = num_prefix_tokens
        dim = config.embed_dim
        self.decoder_embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        table = sincos_pos_embed(dim, self.grid_size, num_prefix_tokens)
        self.decoder_pos_embed = nn.Parameter(table, requires_grad=False)
        self.decoder_blocks = make_blocks(config)
        self.decoder_norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.decoder_pred = nn.Linear(dim, patch_dim)
        self.apply(init_mae_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(
        self, tokens: Tensor, ids_restore: Tensor, grid: tuple[int, ...] | None = None
    ) -> Tensor:
        """Predict every patch from the visible tokens.

        Args:
            tokens: [B, prefix + K, D_enc] encoder output (prefix tokens first).
            ids_restore: [B, N] from the masking function.
            grid: the input's patch grid if it differs from the built one.

        Returns:
            [B, N, P] predicted patches in grid order (prefix tokens dropped).
        """
        grid = tuple(grid or self.grid_size)
        if ids_restore.shape[1] != math.prod(grid):
            raise ValueError(
                f"ids_restore has {ids_restore.shape[1]} patches, grid {grid} needs "
                f"{math.prod(grid)}"
            )
        prefix = self.num_prefix_tokens
        x = self.decoder_embed(tokens)
        batch, num_patches = ids_restore.shape
        num_masked = num_patches + prefix - x.shape[1]
        mask_tokens = self.mask_token.to(x.dtype).expand(batch, num_masked, -1)
        patches = torch.cat([x[:, prefix:], mask_tokens], dim=1)
        index = ids_restore[..., None].expand(-1, -1, x.shape[-1])
        x = torch.cat([x[:, :prefix], torch.gather(patches, 1, index)], dim=1)
        x = x + pos_embed_for_grid(self.decoder_pos_embed, self.grid_size, grid, prefix)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, prefix:]
