import math
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avpretrain.models.losses import (
    denormalize_prediction,
    info_nce,
    masked_mse,
    normalize_patches,
)

PRED = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]]])
TARGET = torch.tensor([[[0.0, 2.0], [5.0, 5.0], [1.0, 3.0]]])
MASK = torch.tensor([[1.0, 0.0, 1.0]])


def test_masked_mse_hand_computed():
    # patch 0: ((1-0)^2 + 0) / 2 = 0.5; patch 2: ((3-1)^2 + (-1-3)^2) / 2 = 10; mean = 5.25
    assert masked_mse(PRED, TARGET, MASK, norm_pix=False).item() == 5.25


def test_masked_mse_ignores_visible_patches():
    changed = PRED.clone()
    changed[0, 1] = torch.tensor([100.0, -7.0])
    for norm_pix in (False, True):
        assert masked_mse(changed, TARGET, MASK, norm_pix) == masked_mse(
            PRED, TARGET, MASK, norm_pix
        )


def test_masked_mse_norm_pix_hand_computed():
    # Target patches normalised by mean and unbiased variance (MAE): patch 0 = [0, 2]
    # -> mean 1, var 2; patch 2 = [1, 3] -> mean 2, var 2; both become [-s, s], s = 1/sqrt(2+eps).
    s = 1 / math.sqrt(2 + 1e-6)
    p0 = ((1 + s) ** 2 + (2 - s) ** 2) / 2
    p2 = ((3 + s) ** 2 + (-1 - s) ** 2) / 2
    loss = masked_mse(PRED, TARGET, MASK, norm_pix=True)
    assert math.isclose(loss.item(), (p0 + p2) / 2, rel_tol=1e-6)


def test_denormalize_inverts_normalize_and_pastes_visible():
    torch.manual_seed(0)
    target = torch.randn(2, 5, 12) * 3 + 1
    torch.testing.assert_close(denormalize_prediction(normalize_patches(target), target), target)
    mask = torch.tensor([[1.0, 0, 0, 1, 1], [0, 0, 1, 0, 0]])
    pasted = denormalize_prediction(torch.zeros_like(target), target, mask)
    torch.testing.assert_close(pasted[mask == 0], target[mask == 0])
    torch.testing.assert_close(
        pasted[mask == 1], target.mean(-1, keepdim=True).expand_as(target)[mask == 1]
    )


def _hand_info_nce(a, v, tau):
    def unit(x):
        n = math.sqrt(sum(c * c for c in x))
        return [c / n for c in x]

    a, v = [unit(x) for x in a], [unit(x) for x in v]

    def ce(q, k):
        total = 0.0
        for i, qi in enumerate(q):
            logits = [sum(x * y for x, y in zip(qi, kj, strict=True)) / tau for kj in k]
            total += -logits[i] + math.log(sum(math.exp(z) for z in logits))
        return total / len(q)

    return (ce(a, v) + ce(v, a)) / 2


def test_info_nce_hand_computed():
    a = [[1.0, 0.0], [0.5, 0.5], [-1.0, 2.0]]
    v = [[0.8, 0.1], [0.0, 1.0], [-0.3, 0.4]]
    loss = info_nce(torch.tensor(a), torch.tensor(v), tau=0.5)
    assert math.isclose(loss.item(), _hand_info_nce(a, v, 0.5), rel_tol=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank: int, world: int, port: int, a, v, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        b = a.shape[0] // world
        a_local = a[rank * b : (rank + 1) * b].clone().requires_grad_()
        v_local = v[rank * b : (rank + 1) * b].clone().requires_grad_()
        loss = info_nce(a_local, v_local, tau=0.1)
        loss.backward()
        torch.save(
            {"loss": loss.detach(), "ga": a_local.grad, "gv": v_local.grad}, f"{out_dir}/{rank}.pt"
        )
    finally:
        dist.destroy_process_group()


def test_info_nce_gathered_over_two_ranks_equals_global_batch(tmp_path):
    torch.manual_seed(0)
    world = 2
    a, v = torch.randn(4, 3), torch.randn(4, 3)
    mp.spawn(_rank_worker, args=(world, _free_port(), a, v, str(tmp_path)), nprocs=world)
    ranks = [torch.load(tmp_path / f"{r}.pt") for r in range(world)]

    a_ref, v_ref = a.clone().requires_grad_(), v.clone().requires_grad_()
    ref = info_nce(a_ref, v_ref, tau=0.1)
    ref.backward()
    mean_loss = sum(r["loss"] for r in ranks) / world
    assert abs(mean_loss.item() - ref.item()) < 1e-6
    # A rank's gradient sums every rank's loss through the gather; DDP then averages it
    # over ranks, which gives the gradient of the global mean loss.
    b = a.shape[0] // world
    for rank, r in enumerate(ranks):
        torch.testing.assert_close(r["ga"] / world, a_ref.grad[rank * b : (rank + 1) * b])
        torch.testing.assert_close(r["gv"] / world, v_ref.grad[rank * b : (rank + 1) * b])
