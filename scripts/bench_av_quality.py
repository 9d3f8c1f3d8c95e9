"""The av_quality head on the synthetic quality world: pretrained vs random encoders, by input.

Fits ``tasks/av_quality/synth.yaml`` (frozen encoders, regression head on overall / video / audio
MOS, 8 dense frames per clip) for the same number of steps per run (a time limit as a safety
cap) through the same LightningCLI path as ``avpretrain fit``, once per encoders x ``inputs``
(video, audio, av), validates the final weights and prints SRCC and PLCC (raw predictions) per
target as a Markdown table::

    avpretrain demo --out demo_out          # tiny encoders for 64 px frames, [128, 288] fbank
    avpretrain synth-quality --out data/quality --clips 768 --val-clips 256 --seconds 3 \\
        --frames 16 --frame-size 64 --shard-size 64
    python scripts/bench_av_quality.py --world data/quality --encoders demo_out/encoders.pt
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import yaml
from tqdm import tqdm

from avpretrain.av_quality.kfold import fold_metrics
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.recipes import resolve_recipe

RECIPE = resolve_recipe("tasks/av_quality/synth")
INPUTS = ("video", "audio", "av")
TARGETS = ("overall", "video", "audio")


def run_one(cfg: dict, encoders: str | None, inputs: str, args: argparse.Namespace) -> dict:
    """Fit one configuration for ``args.max_steps`` (at most ``args.minutes``) and return its
    val metrics."""
    cfg = copy.deepcopy(cfg)
    minutes, seconds = divmod(round(args.minutes * 60), 60)
    with tempfile.TemporaryDirectory() as tmp:
        cfg["trainer"].update(
            max_time=f"00:00:{minutes:02d}:{seconds:02d}",
            max_steps=args.max_steps,
            max_epochs=1000,
            default_root_dir=tmp,
            enable_progress_bar=False,
            enable_model_summary=False,
            check_val_every_n_epoch=1000,  # validate once, at the end
            logger=False,
        )
        cfg["model"]["init_args"].update(encoders=encoders, inputs=inputs)
        data = cfg["data"]["init_args"]
        data.update(
            train_urls=str(args.world / "train"),
            val_urls=str(args.world / "val"),
            num_workers=args.workers,
        )
        path = Path(tmp) / "recipe.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        start = time.perf_counter()
        cli = run_lightning_cli(["fit", "--config", str(path)])
        logged = cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)[0]
        return {
            "metrics": fold_metrics(logged),
            "epochs": cli.trainer.current_epoch,
            "steps": cli.trainer.global_step,
            "seconds": round(time.perf_counter() - start, 1),
        }


def table(results: list[dict]) -> str:
    """Markdown: one row per encoders x inputs, SRCC / PLCC per target."""
    head = "| encoders | inputs | " + " | ".join(f"{t} SRCC | {t} PLCC" for t in TARGETS)
    lines = [head + " | steps |", "|---|---|" + "---|---|" * len(TARGETS) + "---|"]
    for r in results:
        cells = " | ".join(
            f"{r['metrics'][t]['SRCC']:.3f} | {r['metrics'][t]['PLCC']:.3f}" for t in TARGETS
        )
        lines.append(f"| {r['encoders']} | {r['inputs']} | {cells} | {r['steps']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", required=True, type=Path, help="quality world (train/, val/)")
    p.add_argument("--encoders", required=True, help="pretrained encoders (avpretrain export)")
    p.add_argument("--max-steps", type=int, default=96, help="training steps per run")
    p.add_argument("--minutes", type=float, default=3.0, help="training time cap per run")
    p.add_argument("--workers", type=int, default=1, help="data loader workers")
    p.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=INPUTS)
    p.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = p.parse_args()
    cfg = yaml.safe_load(RECIPE.read_text())
    results = []
    runs = [
        (n, e, i) for n, e in (("pretrained", args.encoders), ("random", None)) for i in args.inputs
    ]
    for name, encoders, inputs in tqdm(runs, desc="bench_av_quality", unit="run", disable=None):
        result = run_one(cfg, encoders, inputs, args)
        results.append({"encoders": name, "inputs": inputs, **result})
        tqdm.write(f"[bench_av_quality] {name} {inputs}: {json.dumps(result)}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=1))
    print("\n" + table(results))


if __name__ == "__main__":
    main()
