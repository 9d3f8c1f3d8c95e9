"""Pretraining losses: masked patch reconstruction (MAE) and symmetric InfoNCE (CAV-MAE).

Both compute in float32 whatever the autocast dtype, since the losses are small reductions.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torch.distributed.nn.functional import all_gather

NORM_PIX_EPS = 1e-6


def normalize_patches(patches: Tensor, eps: float = NORM_PIX_EPS) -> Tensor:
    """Normalise each patch by its own mean and (unbiased) variance, as MAE's norm_pix_loss.

    Args:
        patches: [B, N, P].
        eps: added to the variance.

    Returns:
        [B, N, P] ``(x - mean) / sqrt(var + eps)`` per patch.
    """
    var, mean = torch.var_mean(patches, dim=-1, keepdim=True)  # one pass over the patches
    return (patches - mean) * torch.rsqrt(var + eps)


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor, norm_pix: bool) -> Tensor:
    """Mean squared error over the masked patches only.

    Args:
        pred: [B, N, P] predicted patches.
        target: [B, N, P] true patches (``patchify`` of the input).
        mask: [B, N], 1 for masked patches (scored), 0 for visible ones (ignored).
        norm_pix: compare with per-patch normalised targets (:func:`normalize_patches`).

    Returns:
        0-dim tensor: ``sum(mask * mean_P((pred - target)^2)) / sum(mask)``; 0 if nothing is
        masked.
    """
    if pred.shape != target.shape or mask.shape != pred.shape[:2]:
        raise ValueError(
            f"masked_mse: pred {tuple(pred.shape)}, target {tuple(target.shape)} and "
            f"mask {tuple(mask.shape)} do not match"
        )
    target = target.float()
    if norm_pix:
        target = normalize_patches(target)
    per_patch = (pred.float() - target).pow(2).mean(dim=-1)
    mask = mask.float()
    return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)


def denormalize_prediction(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Map norm_pix predictions back to pixel space with each target patch's mean and variance.

    This is what MAE's visualisations do; it borrows first and second moments of the true
    masked patches, so it is for figures, not for measuring reconstruction.

    Args:
        pred: [B, N, P] predictions in normalised space.
        target: [B, N, P] true patches.
        mask: [B, N], 1 for masked; if given, visible patches are the true ones (the usual
            "reconstruction + visible" figure).

    Returns:
        [B, N, P] patches in the target's space.
    """
    target = target.float()
    mean = target.mean(dim=-1, keepdim=True)
    std = (target.var(dim=-1, keepdim=True) + NORM_PIX_EPS) ** 0.5
    out = pred.float() * std + mean
    if mask is not None:
        out = torch.where(mask[..., None].bool(), out, target)
    return out


def _distributed_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def info_nce(a: Tensor, v: Tensor, tau: float | Tensor, gather: bool = True) -> Tensor:
    """Symmetric InfoNCE between paired embeddings, negatives gathered from all ranks.

    Under ``torch.distributed`` with world size W > 1 (and ``gather``), each rank scores its
    B local queries against all W * B keys; gradients flow back through the gather. Every rank
    must pass the same B. The mean of the W per-rank losses equals the single-process loss
    on the concatenated batch, and DDP's gradient averaging then gives its gradient.

    Args:
        a: [B, D] audio embeddings (normalised here).
        v: [B, D] visual embeddings, ``v[i]`` paired with ``a[i]``.
        tau: temperature (a scalar tensor when it is learned).
        gather: gather negatives across ranks when distributed.

    Returns:
        0-dim tensor: ``(CE(a -> v) + CE(v -> a)) / 2``.
    """
    if a.shape != v.shape or a.ndim != 2:
        raise ValueError(
            f"info_nce needs two [B, D] tensors, got {tuple(a.shape)}, {tuple(v.shape)}"
        )
    a = F.normalize(a.float(), dim=-1)
    v = F.normalize(v.float(), dim=-1)
    rank, world = _distributed_world()
    if gather and world > 1:
        a_all = torch.cat(all_gather(a), dim=0)
        v_all = torch.cat(all_gather(v), dim=0)
    else:
        a_all, v_all, rank = a, v, 0
    targets = torch.arange(a.shape[0], device=a.device) + rank * a.shape[0]
    loss_av = F.cross_entropy(a @ v_all.T / tau, targets)
    loss_va = F.cross_entropy(v @ a_all.T / tau, targets)
    return (loss_av + loss_va) / 2
