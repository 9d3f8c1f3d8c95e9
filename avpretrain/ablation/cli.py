r"""``avpretrain ablate``: the curation and scaling ablation grid, on one machine or a cluster.

Examples::

    avpretrain ablate --grid configs/ablate/tiny.yaml            # every point, then the summary
    avpretrain ablate --grid configs/ablate/tiny.yaml --list     # the points and their indices
    avpretrain ablate --grid G.yaml --index 3                    # one point (a SLURM array task)
    avpretrain ablate --grid G.yaml --run-one --scale 10000 --curated true --threshold 0.5 \
        --criteria instance+temporal                             # one point by its axis values
    avpretrain ablate --grid G.yaml --emit-sweep cluster/        # W&B sweep + SLURM array script
    avpretrain ablate --grid G.yaml --collect                    # table + plot of finished points
"""

from __future__ import annotations

import argparse
import logging
import sys

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from avpretrain.ablation.cluster import emit
from avpretrain.ablation.grid import Grid, Point, load_grid, parse_criteria
from avpretrain.ablation.run import run_point
from avpretrain.ablation.summary import write_summary

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="avpretrain ablate",
        description="Pretrain and probe on every point of a curation / data-scale grid, then "
        "tabulate and plot the metrics against data scale.",
    )
    p.add_argument(
        "--grid", required=True, help="grid YAML, or a packaged grid: ablate/tiny, ablate/paper"
    )
    p.add_argument("--out", help="output folder (default: the grid's `out`)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="print the grid points and exit")
    mode.add_argument("--index", type=int, help="run only the point with this index")
    mode.add_argument(
        "--run-one", action="store_true", help="run only the point given by the axis flags"
    )
    mode.add_argument("--emit-sweep", metavar="DIR", help="write sweep.yaml and ablate.sbatch")
    mode.add_argument("--collect", action="store_true", help="summarise finished points only")
    p.add_argument("--scale", help="--run-one: clip count or fraction")
    p.add_argument("--curated", help="--run-one: true or false")
    p.add_argument("--threshold", help="--run-one: similarity threshold")
    p.add_argument("--criteria", help="--run-one: stages, e.g. instance+temporal")
    p.add_argument("--force", action="store_true", help="rerun points that have a result")
    return p


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"--curated must be true or false, got {text!r}")


def find_point(grid: Grid, args: argparse.Namespace) -> Point:
    """The grid point named by ``--scale --curated [--threshold --criteria]``.

    Raises:
        ValueError: the values name no point of the grid.
    """
    if args.scale is None or args.curated is None:
        raise ValueError("--run-one needs --scale and --curated")
    scale = float(args.scale)
    curated = _bool(args.curated)
    threshold = None if args.threshold in (None, "None") else float(args.threshold)
    criteria = None if args.criteria in (None, "None") else parse_criteria(args.criteria)
    for point in grid.points():
        if point.scale != scale or point.curated != curated:
            continue
        if not curated or (point.threshold == threshold and point.criteria == criteria):
            return point
    raise ValueError(
        f"{grid.path}: no grid point with scale={args.scale} curated={args.curated} "
        f"threshold={args.threshold} criteria={args.criteria}; see --list"
    )


def _selected(grid: Grid, args: argparse.Namespace) -> list[Point]:
    points = grid.points()
    if args.index is not None:
        if not 0 <= args.index < len(points):
            raise ValueError(f"--index {args.index}: the grid has points 0..{len(points) - 1}")
        return [points[args.index]]
    if args.run_one:
        return [find_point(grid, args)]
    return points


def main(argv: list[str]) -> int:
    """``avpretrain ablate``: 0 on success, 2 on a bad grid or arguments."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        grid = load_grid(args.grid, args.out)
        if args.list:
            for point in grid.points():
                print(point.index, point.name, point.values())
            return 0
        if args.emit_sweep:
            paths = emit(grid, args.emit_sweep)
            print(f"ablate: {len(grid.points())} points -> {paths['sweep']}, {paths['slurm']}")
            return 0
        if not args.collect:
            points = _selected(grid, args)
            with logging_redirect_tqdm():
                for point in tqdm(points, desc="ablate", unit="point", disable=None):
                    run_point(grid, point, force=args.force)
        if args.collect or not (args.run_one or args.index is not None):
            paths = write_summary(grid.out)
            print(paths["markdown"].read_text())
            print(f"ablate: summary -> {paths['markdown']}, {paths['csv']}, {paths['plot']}")
    except (ValueError, FileNotFoundError) as err:
        print(f"avpretrain ablate: {err}", file=sys.stderr)
        return 2
    return 0
