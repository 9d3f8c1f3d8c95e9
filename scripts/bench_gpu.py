"""Pretraining throughput on one GPU for each loader mode: samples/s, MFU and data-wait share.

Writes synthetic shards of 10 s clips (10 JPEG frames at 256 px short side, 16 kHz audio, as
``scripts/bench_loader.py`` does), with FLAC and with PCM audio, then for each loader mode runs
``avpretrain fit`` on the base recipe (``configs/pretrain/base.yaml``: bf16, torch.compile) for
``--steps`` steps on one GPU, with the recipe's ``ThroughputMonitor``, and prints a markdown
table of the medians of ``perf/samples_per_s``, ``perf/mfu`` and ``perf/data_wait_share`` over
the logged windows after the first (compilation and warm-up).

Modes: ``cpu-fbank`` (FLAC, fbank in the workers), ``decode-only`` (FLAC, fbank on the GPU),
``decode-only-pcm`` and ``bytes-only`` (PCM; JPEGs decoded with nvJPEG on the GPU too).

    python scripts/bench_gpu.py                        # all modes, 300 steps each
    python scripts/bench_gpu.py --modes bytes-only --steps 200 --workers 8

Needs a CUDA device: without one it stops at once with exit status 2 (``--config
configs/pretrain/tiny.yaml --accelerator cpu`` runs the same path on a CPU, as a smoke test).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_loader import write_bench_shards  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# mode -> (shard codec, data options)
MODES: dict[str, tuple[str, dict[str, bool]]] = {
    "cpu-fbank": ("flac", {"audio_on_device": False, "frames_on_device": False}),
    "decode-only": ("flac", {"audio_on_device": True, "frames_on_device": False}),
    "decode-only-pcm": ("pcm", {"audio_on_device": True, "frames_on_device": False}),
    "bytes-only": ("pcm", {"audio_on_device": True, "frames_on_device": True}),
}
METRICS = ("perf/samples_per_s", "perf/mfu", "perf/data_wait_share")


def run_config(args: argparse.Namespace, shards: Path, options: dict, out: Path) -> dict:
    """The recipe with one GPU, ``--steps`` steps, CSV logging and only the throughput monitor."""
    config = yaml.safe_load(Path(args.config).read_text())
    trainer = config["trainer"]
    monitor = next(c for c in trainer["callbacks"] if c["class_path"].endswith("ThroughputMonitor"))
    monitor["init_args"]["window"] = args.window
    trainer.update(
        accelerator=args.accelerator,
        devices=1,
        num_nodes=1,
        strategy="auto",
        max_steps=args.steps,
        max_epochs=None,
        log_every_n_steps=args.window,
        default_root_dir=str(out),
        enable_checkpointing=False,
        limit_val_batches=0,
        callbacks=[monitor],
        logger={
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(out), "name": "", "version": ""},
        },
    )
    trainer.pop("val_check_interval", None)
    trainer.pop("check_val_every_n_epoch", None)
    data = config["data"]["init_args"]
    data.update(
        train_urls=str(shards),
        val_urls=None,
        num_workers=args.workers,
        resampled=True,
        epoch_samples=args.steps * data["batch_size"] * 2,
        **options,
    )
    if args.batch_size:
        data["batch_size"] = args.batch_size
    return config


def medians(metrics_csv: Path) -> dict[str, float]:
    """Median of each metric over the logged windows, the first (compilation) left out; NaN for
    a metric never logged (MFU without the recipe's ``peak_tflops``)."""
    rows = list(csv.DictReader(metrics_csv.open()))
    values: dict[str, float] = {}
    for name in METRICS:
        logged = [float(r[name]) for r in rows if r.get(name)]
        if len(logged) == 1:
            raise RuntimeError(f"{metrics_csv}: only one window of {name}; raise --steps")
        values[name] = statistics.median(logged[1:]) if logged else float("nan")
    return values


def run_mode(args: argparse.Namespace, work: Path, mode: str) -> dict[str, float]:
    codec, options = MODES[mode]
    out = work / mode
    out.mkdir()
    config = out / "config.yaml"
    config.write_text(yaml.safe_dump(run_config(args, work / codec, options, out)))
    command = [sys.executable, "-m", "avpretrain.cli", "fit", "--config", str(config)]
    print(f"== {mode}: {' '.join(command)}", flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    return medians(out / "metrics.csv")


def print_table(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    device = torch.cuda.get_device_name() if args.accelerator == "gpu" else "cpu"
    print(f"\n{device}, {Path(args.config).name}, {args.steps} steps, {args.workers} workers")
    print("| mode | samples/s | MFU | data wait share |")
    print("|---|---:|---:|---:|")
    for mode, m in results.items():
        print(
            f"| {mode} | {m['perf/samples_per_s']:.0f} | {m['perf/mfu']:.1%} | "
            f"{m['perf/data_wait_share']:.1%} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs/pretrain/base.yaml"))
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=list(MODES))
    parser.add_argument("--steps", type=int, default=300, help="training steps per mode")
    parser.add_argument("--window", type=int, default=25, help="steps per logged window")
    parser.add_argument("--clips", type=int, default=512, help="synthetic clips per codec")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--batch-size", type=int, default=0, help="0: the recipe's")
    parser.add_argument("--accelerator", default="gpu", choices=("gpu", "cpu"))
    args = parser.parse_args(argv)
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        print(
            "bench_gpu: no CUDA device here; this benchmark measures GPU training throughput "
            "(use --accelerator cpu with a tiny config only to smoke-test it)",
            file=sys.stderr,
        )
        return 2
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for codec in {MODES[m][0] for m in args.modes}:
            write_bench_shards(work / codec, args.clips, codec)
        for mode in args.modes:
            results[mode] = run_mode(args, work, mode)
    print_table(results, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
