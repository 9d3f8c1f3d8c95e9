"""``avpretrain demo`` for several seeds, then the pretrained-vs-random margin as mean ± std.

Every run shares one world (``<out>/world``, written once) and its own budget; the seed sets the
initialisation, the masks and the data order. Extra arguments go to the demo::

    python scripts/demo_seeds.py --seeds 3 --out demo_seeds          # 3 x 5 minutes
    python scripts/demo_seeds.py --seeds 3 --out demo_seeds -- --minutes 2
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from avpretrain.demo import main as demo


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3, help="runs, with seeds 0 .. N-1")
    p.add_argument("--out", type=Path, default=Path("demo_seeds"))
    p.add_argument("demo_args", nargs="*", help="arguments for avpretrain demo (after --)")
    args = p.parse_args()
    results = []
    for seed in range(args.seeds):
        run = args.out / f"seed{seed}"
        run.mkdir(parents=True, exist_ok=True)
        world = args.out / "world"
        if world.exists() and not (run / "world").exists():
            (run / "world").symlink_to(world.resolve(), target_is_directory=True)
        demo(["--out", str(run), "--seed", str(seed), *args.demo_args])
        if not world.exists():
            shutil.move(str(run / "world"), world)
            (run / "world").symlink_to(world.resolve(), target_is_directory=True)
        results.append(json.loads((run / "result.json").read_text()))
    print("\n| seed | steps | probe random | probe pretrained | margin (points) |")
    print("|---|---|---|---|---|")
    for r in results:
        margin = 100 * (r["probe_pretrained"] - r["probe_random"])
        print(
            f"| {r['seed']} | {r['steps']} | {r['probe_random']:.3f} | "
            f"{r['probe_pretrained']:.3f} | {margin:+.1f} |"
        )
    cols = {k: np.array([r[k] for r in results]) for k in ("probe_random", "probe_pretrained")}
    margins = 100 * (cols["probe_pretrained"] - cols["probe_random"])
    ddof = 1 if len(results) > 1 else 0

    def ms(x: np.ndarray, scale: float = 1.0) -> str:
        return f"{scale * x.mean():.3f} ± {scale * x.std(ddof=ddof):.3f}"

    print(
        f"| mean ± std | | {ms(cols['probe_random'])} | {ms(cols['probe_pretrained'])} | "
        f"{margins.mean():+.1f} ± {margins.std(ddof=ddof):.1f} |"
    )
    print(f"\nsmallest margin: {margins.min():+.1f} points (chance {results[0]['chance']:.3f})")


if __name__ == "__main__":
    main()
