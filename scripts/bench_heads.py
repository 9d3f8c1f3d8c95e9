"""Each downstream head on the synthetic world, from pretrained and from random encoders.

Trains every task's synthetic recipe for a bounded time through the same LightningCLI path as
``avpretrain fit``, validates, and prints one table: task, metric, pretrained, random, chance.

    avpretrain demo --out demo_out              # writes demo_out/world and demo_out/encoders.pt
    python scripts/bench_heads.py --world demo_out/world --encoders demo_out/encoders.pt
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml

from avpretrain.lightning_cli import run_lightning_cli

ROOT = Path(__file__).resolve().parents[1]
# task: (recipe, metric logged, chance level as a function of the validation size and classes)
TASKS = {
    "classification": ("classification/synth_linear.yaml", "val/acc", lambda n, c: 1 / c),
    "retrieval": ("retrieval/synth.yaml", "val/a2v_R1", lambda n, c: 100 / n),
    "localization": ("localization/synth.yaml", "val/cIoU", None),
    "segmentation": ("segmentation/synth.yaml", "val/mIoU", None),
}


def run_task(recipe: str, world: Path, encoders: str | None, minutes: float, tmp: Path) -> dict:
    """Fit one recipe for ``minutes`` on ``world`` and return its final validation metrics."""
    cfg = yaml.safe_load((ROOT / "tasks" / recipe).read_text())
    cfg["trainer"].update(
        max_time=f"00:00:{int(minutes):02d}:{round(minutes % 1 * 60):02d}",
        max_epochs=1000,
        default_root_dir=str(tmp),
        enable_progress_bar=False,
        enable_model_summary=False,
        logger={
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(tmp)},
        },
    )
    cfg["model"]["init_args"]["encoders"] = encoders
    data = cfg["data"]["init_args"]
    data.update(train_urls=str(world / "train"), val_urls=str(world / "val"), num_workers=1)
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cli = run_lightning_cli(["fit", "--config", str(path)])
    return cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--world", required=True, type=Path, help="synthetic world (train/, val/)")
    p.add_argument("--encoders", required=True, help="pretrained encoders (avpretrain export)")
    p.add_argument("--minutes", type=float, default=1.0, help="training time per run")
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    args = p.parse_args()
    index = yaml.safe_load((args.world / "val" / "index.json").read_text())
    num_val, num_classes = index["total"], index["synth"]["num_classes"]
    rows = []
    for task in args.tasks:
        recipe, metric, chance = TASKS[task]
        scores = {}
        for name, encoders in (("pretrained", args.encoders), ("random", None)):
            with tempfile.TemporaryDirectory() as tmp:
                scores[name] = run_task(recipe, args.world, encoders, args.minutes, Path(tmp))[
                    metric
                ]
        level = f"{chance(num_val, num_classes):.3f}" if chance else "-"
        rows.append((task, metric, scores["pretrained"], scores["random"], level))
    print("\n| task | metric | pretrained | random | chance |\n|---|---|---|---|---|")
    for task, metric, pre, rand, level in rows:
        print(f"| {task} | {metric} | {pre:.3f} | {rand:.3f} | {level} |")


if __name__ == "__main__":
    main()
