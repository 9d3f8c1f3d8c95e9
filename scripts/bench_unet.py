"""Training-step time of the separation U-Net, channels-last against the default layout.

One forward and backward pass of :class:`avpretrain.heads.unet.AudioUNet` on a batch of
spectrograms, with ``channels_last`` on and off, interleaved in one process so that both
layouts see the same machine load; prints the seconds per step of each and their ratio, and
checks that both layouts give the same output. The defaults are the synthetic separation
recipe's (``tasks/separation/synth.yaml``: widths 16-64, 16 output maps, 256 warped bins x 128
STFT frames, the 16 mixtures of a batch of 16 clips; the U-Net runs once per mixture):

    python scripts/bench_unet.py
    python scripts/bench_unet.py --channels 64 128 256 512 512 512 512 --out 32 --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch

from avpretrain.heads.unet import AudioUNet


def step_seconds(net: AudioUNet, x: torch.Tensor, steps: int) -> float:
    """Mean seconds of one forward + backward pass of ``net`` on ``x`` [B, 1, F, T]."""
    start = time.perf_counter()
    for _ in range(steps):
        net(x).square().mean().backward()
    if x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64, 64, 64])
    p.add_argument("--out", type=int, default=16, help="output maps (the head's K)")
    p.add_argument("--batch", type=int, default=16, help="mixtures per step")
    p.add_argument("--size", type=int, nargs=2, default=[256, 128], help="F T")
    p.add_argument("--steps", type=int, default=5, help="timed steps per layout per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nets = {
        layout: AudioUNet(args.channels, args.out, channels_last=layout == "channels_last")
        for layout in ("contiguous", "channels_last")
    }
    nets["channels_last"].load_state_dict(nets["contiguous"].state_dict())
    x = torch.randn(args.batch, 1, *args.size, device=args.device)
    for net in nets.values():
        net.to(args.device).eval()
    with torch.no_grad():
        a, b = (net(x) for net in nets.values())
    print(f"max |output difference|: {float((a - b).abs().max()):.2e}")
    for net in nets.values():
        net.train()
        step_seconds(net, x, 2)  # warm-up: oneDNN / cuDNN pick their kernels
    times: dict[str, list[float]] = {layout: [] for layout in nets}
    for _ in range(args.rounds):
        for layout, net in nets.items():
            times[layout].append(step_seconds(net, x, args.steps))
    best = {layout: min(t) for layout, t in times.items()}
    for layout, t in best.items():
        print(f"{layout:>14}: {t:.3f} s per step (best of {args.rounds} rounds)")
    print(f"channels_last speed-up: {best['contiguous'] / best['channels_last']:.2f}x")


if __name__ == "__main__":
    main()
