"""Running the grid on a cluster: a W&B sweep config and a SLURM array script.

``avpretrain ablate --grid G.yaml --emit-sweep DIR`` writes:

- ``DIR/sweep.yaml``: a W&B grid sweep over the grid's axes; each agent call runs
  ``avpretrain ablate --grid G.yaml --run-one --scale=... --curated=... ...`` (``wandb sweep
  DIR/sweep.yaml``, then ``wandb agent <id>`` on each node). The sweep enumerates the full
  product of the axes; uncurated points that differ only in threshold or criteria map to the
  same point, whose ``result.json`` makes the repeats return at once.
- ``DIR/ablate.sbatch``: a SLURM array, one task per grid point (``sbatch DIR/ablate.sbatch``),
  each running ``avpretrain ablate --grid G.yaml --index $SLURM_ARRAY_TASK_ID``.

Either way ``avpretrain ablate --grid G.yaml --collect`` tabulates and plots the finished points.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

import yaml

from avpretrain.ablation.grid import Grid

DEFAULT_SBATCH = {"cpus-per-task": 16, "gres": "gpu:1", "time": "24:00:00"}


def sweep_config(grid: Grid, metric: str | None = None) -> dict[str, Any]:
    """The W&B sweep (method grid) over the grid's axes, calling ``ablate --run-one``."""
    axes = {
        "scale": grid.axes.scale,
        "curated": grid.axes.curated,
        "threshold": grid.axes.thresholds(),
        "criteria": [
            None if c is None else "+".join(c) or "none" for c in grid.axes.criteria_sets()
        ],
    }
    if True not in grid.axes.curated:
        axes = {"scale": axes["scale"], "curated": axes["curated"]}
    if metric is None and grid.probes:
        probe = grid.probes[0]
        metric = probe.metrics[0] if probe.metrics else None
    config: dict[str, Any] = {
        "name": f"ablate-{grid.name}",
        "program": "avpretrain",
        "method": "grid",
        "parameters": {name: {"values": values} for name, values in axes.items()},
        "command": [
            "${program}",
            "ablate",
            "--grid",
            str(grid.path),
            "--out",
            str(Path(grid.out).resolve()),
            "--run-one",
            "${args}",
        ],
    }
    if metric:
        config["metric"] = {"name": metric, "goal": "maximize"}
    return config


def slurm_script(grid: Grid, workdir: str | Path | None = None) -> str:
    """An ``sbatch`` array script with one task per grid point.

    ``#SBATCH`` options come from the grid's ``sbatch`` mapping over :data:`DEFAULT_SBATCH`.
    """
    count = len(grid.points())
    out = Path(grid.out).resolve()
    options = {**DEFAULT_SBATCH, **grid.sbatch}
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name=ablate-{grid.name}",
        f"#SBATCH --array=0-{count - 1}",
        f"#SBATCH --output={out}/slurm/%A_%a.out",
    ]
    lines += [f"#SBATCH --{key}={value}" for key, value in options.items()]
    command = ["avpretrain", "ablate", "--grid", str(grid.path), "--out", str(out)]
    lines += [
        "",
        f"# {count} grid points; when they are done: "
        f"avpretrain ablate --grid {shlex.quote(str(grid.path))} --out {out} --collect",
        "set -euo pipefail",
        f"cd {shlex.quote(str(Path(workdir or os.getcwd()).resolve()))}",
        shlex.join(command) + " --index $SLURM_ARRAY_TASK_ID",
        "",
    ]
    return "\n".join(lines)


def emit(grid: Grid, directory: str | Path) -> dict[str, Path]:
    """Write ``sweep.yaml`` and ``ablate.sbatch`` into ``directory``; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sweep = directory / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(sweep_config(grid), sort_keys=False))
    script = directory / "ablate.sbatch"
    script.write_text(slurm_script(grid))
    script.chmod(0o755)
    # SLURM opens the --output files before the script runs, so their folder must exist
    (Path(grid.out).resolve() / "slurm").mkdir(parents=True, exist_ok=True)
    return {"sweep": sweep, "slurm": script}
