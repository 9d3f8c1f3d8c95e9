"""Training step time and MFU of the AV-MAE against a reference MAE built from timm's Block.

Both models have the same shapes (encoders, decoders, mask ratios, norm-pix loss); each step is
forward + backward + AdamW. Steps alternate between the two models in rounds, so machine noise
hits both alike, and the table reports medians and the ratio measured in the same run.

    python scripts/bench_pretrain.py                       # CPU: tiny and base, fp32
    python scripts/bench_pretrain.py --device cuda --bf16 --compile --peak-tflops 989 \
        --batch base=64 --configs base
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_mae import ReferenceAVMAE  # noqa: E402

from avpretrain.models import AVMAE, ViTConfig  # noqa: E402

SHAPES = {  # name: encoder preset, decoder preset, audio (mel, frames), video size
    "tiny": ("tiny", "tiny_decoder", (128, 288), 64),
    "base": ("base", "base_decoder", (128, 1024), 224),
}
DEFAULT_BATCH = {"tiny": 32, "base": 2}


def build(name: str, device: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    enc, dec, audio_shape, video_size = SHAPES[name]
    ours = AVMAE(enc, dec, audio_shape=audio_shape, video_size=video_size)
    e, d = ViTConfig.preset(enc), ViTConfig.preset(dec)
    ref = ReferenceAVMAE(
        audio_shape,
        video_size,
        e.embed_dim,
        e.depth,
        e.num_heads,
        d.embed_dim,
        d.depth,
        d.num_heads,
    )
    return ours.to(device), ref.to(device)


def loss_of(model: torch.nn.Module, audio: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
    out = model(audio, video)
    return out if isinstance(out, torch.Tensor) else out.loss


def flops_per_sample(model: torch.nn.Module, audio: torch.Tensor, video: torch.Tensor) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        loss_of(model, audio[:1], video[:1]).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def make_step(model, device: str, bf16: bool, compile_model: bool):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    fwd = torch.compile(model) if compile_model else model

    def step(audio, video):
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(fwd, audio, video)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def timed(step, audio, video, n: int, device: str) -> list[float]:
    times = []
    for _ in range(n):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        step(audio, video)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def bench(name: str, batch: int, args: argparse.Namespace) -> list[dict]:
    torch.manual_seed(0)
    ours, ref = build(name, args.device)
    _, _, (mel, frames), size = SHAPES[name]
    audio = torch.randn(batch, 1, mel, frames, device=args.device)
    video = torch.randn(batch, 3, size, size, device=args.device)
    flops = {
        "ours": flops_per_sample(ours, audio, video),
        "ref": flops_per_sample(ref, audio, video),
    }
    steps = {
        "ours": make_step(ours, args.device, args.bf16, args.compile),
        "ref": make_step(ref, args.device, args.bf16, args.compile),
    }
    times: dict[str, list[float]] = {"ours": [], "ref": []}
    for key in steps:  # warmup (and compilation)
        timed(steps[key], audio, video, args.warmup, args.device)
    for _ in range(args.rounds):
        for key in steps:
            times[key] += timed(steps[key], audio, video, args.steps, args.device)
    rows = []
    for key in ("ours", "ref"):
        step_s = statistics.median(times[key])
        row = {
            "config": name,
            "model": "avpretrain AVMAE" if key == "ours" else "reference (timm Block)",
            "batch": batch,
            "step_ms": 1e3 * step_s,
            "samples_per_s": batch / step_s,
            "gflop_per_sample": flops[key] / 1e9,
            "tflop_per_s": flops[key] * batch / step_s / 1e12,
        }
        if args.peak_tflops:
            row["mfu"] = row["tflop_per_s"] / args.peak_tflops
        rows.append(row)
    rows[0]["ref_over_ours"] = rows[1]["step_ms"] / rows[0]["step_ms"]
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", nargs="+", default=["tiny", "base"], choices=sorted(SHAPES))
    p.add_argument("--batch", nargs="*", default=[], help="per-config batch, e.g. base=64")
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p.add_argument("--compile", action="store_true", help="torch.compile both models")
    p.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=3, help="steps per model per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = dict(DEFAULT_BATCH, **{k: int(v) for k, v in (b.split("=") for b in args.batch)})
    print(
        f"device={args.device} bf16={args.bf16} compile={args.compile} "
        f"threads={torch.get_num_threads()}"
    )
    header = (
        "| config | model | batch | step ms | samples/s | GFLOP/sample | TFLOP/s | MFU | ref/ours |"
    )
    print(header + "\n|" + "---|" * 9)
    for name in args.configs:
        for r in bench(name, batches[name], args):
            mfu = f"{r['mfu']:.1%}" if "mfu" in r else "-"
            ratio = f"{r['ref_over_ours']:.2f}" if "ref_over_ours" in r else ""
            print(
                f"| {r['config']} | {r['model']} | {r['batch']} | {r['step_ms']:.1f} | "
                f"{r['samples_per_s']:.1f} | {r['gflop_per_sample']:.3g} | "
                f"{r['tflop_per_s']:.3f} | {mfu} | {ratio} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
