"""A reference audio-visual MAE with the structure of the official MAE code, from timm's ``Block``.

Only for ``bench_pretrain.py``: the same shapes as :class:`avpretrain.models.AVMAE` (per-modality
patch embedding, fixed positions, random masking by argsort of noise, encoder, decoder with mask
tokens, masked MSE), written the way facebookresearch/mae's ``models_mae.py`` is organised, so
our step time has an independent yardstick.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Block, PatchEmbed
from torch import nn


class ReferenceMAE(nn.Module):
    """One modality's MAE: patch embed, timm Blocks, mask tokens, decoder, pixel loss."""

    def __init__(
        self, img_size, in_chans, dim, depth, heads, dec_dim, dec_depth, dec_heads, mask_ratio
    ):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, 16, in_chans, dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim), requires_grad=False)
        self.blocks = nn.ModuleList(Block(dim, heads, 4.0, qkv_bias=True) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.decoder_embed = nn.Linear(dim, dec_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, n + 1, dec_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            Block(dec_dim, dec_heads, 4.0, qkv_bias=True) for _ in range(dec_depth)
        )
        self.decoder_norm = nn.LayerNorm(dec_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(dec_dim, 16 * 16 * in_chans)
        self.mask_ratio = mask_ratio
        self.in_chans = in_chans

    def patchify(self, x):
        b, c, h, w = x.shape
        x = x.reshape(b, c, h // 16, 16, w // 16, 16)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(b, (h // 16) * (w // 16), 256 * c)

    def random_masking(self, x):
        n, length, d = x.shape
        keep = int(length * (1 - self.mask_ratio))
        noise = torch.rand(n, length, device=x.device)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]
        x = torch.gather(x, 1, ids_keep.unsqueeze(-1).repeat(1, 1, d))
        mask = torch.ones(n, length, device=x.device)
        mask[:, :keep] = 0
        return x, torch.gather(mask, 1, ids_restore), ids_restore

    def forward(self, imgs):
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:]
        x, mask, ids_restore = self.random_masking(x)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.decoder_embed(self.norm(x))
        tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:], tokens], dim=1)
        x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1], x_], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        pred = self.decoder_pred(self.decoder_norm(x))[:, 1:]
        target = self.patchify(imgs)
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(-1)
        return (loss * mask).sum() / mask.sum()


class ReferenceAVMAE(nn.Module):
    """Audio MAE + video MAE, loss summed: the AV-MAE objective without extras."""

    def __init__(self, audio_shape, video_size, dim, depth, heads, dec_dim, dec_depth, dec_heads):
        super().__init__()
        common = dict(dim=dim, depth=depth, heads=heads, dec_dim=dec_dim)
        common.update(dec_depth=dec_depth, dec_heads=dec_heads)
        self.audio = ReferenceMAE(tuple(audio_shape), 1, mask_ratio=0.8, **common)
        self.video = ReferenceMAE((video_size, video_size), 3, mask_ratio=0.75, **common)

    def forward(self, audio, video):
        return self.audio(audio) + self.video(video)
