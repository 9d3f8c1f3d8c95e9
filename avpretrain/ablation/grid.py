"""The ablation grid file: parsing, validation and expansion into grid points.

A grid file names the axes of the paper's curation and scaling ablations (ACAV-1M Tables 10-13)
and what every run does::

    name: tiny                       # W&B group and default output folder name
    out: runs/ablate/tiny            # results: runs/<point>/result.json, summary.md/csv, plot
    data:
      pool: data/synth/train         # the shards subsets are drawn from
      scores: data/curated/scores    # `avpretrain curate`'s score cache (curated points only)
      probe_train: data/synth/train  # optional: the probes' train/val shards (else the recipe's)
      probe_val: data/synth/val
    axes:
      scale: [64, 128, 0.5]          # clips: an int is a count, a float in (0, 1] a fraction
      curated: [true, false]         # Table 10
      threshold: [0.25, 0.5]         # Table 12: the similarity threshold of every active stage
      criteria: [instance+temporal+language, instance]   # Table 11: the stages switched on
    threshold_mode: score            # or quantile (as `avpretrain curate --quantile`)
    pretrain:
      recipe: configs/pretrain/tiny.yaml
      budget: {max_steps: 600}       # any of max_steps, max_epochs, max_time
      overrides: {data.init_args.num_workers: 1}   # dotted keys into the recipe
    probes:
      - name: classification
        recipe: tasks/classification/synth_linear.yaml
        budget: {max_epochs: 10}
        metrics: [val/acc]           # optional: the metrics tabulated (default: all validated)

Uncurated points ignore the threshold and criteria, so the expansion keeps one uncurated point
per scale (``threshold`` and ``criteria`` are None there) instead of one per combination.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from avpretrain.curation.filter import STAGES
from avpretrain.recipes import RecipeNotFoundError, resolve_recipe

AXES = ("scale", "curated", "threshold", "criteria")
BUDGET_KEYS = ("max_steps", "max_epochs", "max_time")
THRESHOLD_MODES = ("score", "quantile")


@dataclass(frozen=True)
class Point:
    """One grid point: a training subset, pretrained and probed once.

    Attributes:
        index: position in the expanded grid (the SLURM array index).
        scale: clip count (int) or fraction of the selectable clips (float in (0, 1]).
        curated: whether the alignment filter selects the clips first.
        threshold: the similarity threshold of every active criterion (None when uncurated).
        criteria: the filter stages switched on, in the paper's order (None when uncurated).
    """

    index: int
    scale: int | float
    curated: bool
    threshold: float | None
    criteria: tuple[str, ...] | None

    @property
    def name(self) -> str:
        """A folder-safe unique name, e.g. ``003_n128_cur_t0.5_instance+temporal``."""
        scale = f"n{self.scale}" if isinstance(self.scale, int) else f"f{self.scale:g}"
        if not self.curated:
            return f"{self.index:03d}_{scale}_raw"
        crit = "+".join(self.criteria or ()) or "none"
        return f"{self.index:03d}_{scale}_cur_t{self.threshold:g}_{crit}"

    def values(self) -> dict[str, Any]:
        """The axis values as plain JSON types (``criteria`` as a ``+``-joined string)."""
        crit = None if self.criteria is None else "+".join(self.criteria)
        return {
            "scale": self.scale,
            "curated": self.curated,
            "threshold": self.threshold,
            "criteria": crit,
        }


@dataclass
class Stage:
    """A recipe with its budget and overrides (the pretraining, or one probe)."""

    name: str
    recipe: Path
    budget: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] | None = None


@dataclass
class Grid:
    """A parsed grid file (see the module docstring)."""

    path: Path
    name: str
    out: Path
    data: dict[str, Any]
    axes: dict[str, list[Any]]
    threshold_mode: str
    pretrain: Stage
    probes: list[Stage]
    subset_seed: int = 0
    shard_size: int = 256
    wandb_project: str = "avpretrain-ablation"
    sbatch: dict[str, Any] = field(default_factory=dict)

    def points(self) -> list[Point]:
        """The grid points in a fixed order (scale varies fastest), uncurated ones deduplicated."""
        seen: set[tuple] = set()
        points: list[Point] = []
        combos = itertools.product(
            self.axes["curated"], self.axes["threshold"], self.axes["criteria"], self.axes["scale"]
        )
        for curated, threshold, criteria, scale in combos:
            key = (scale, curated, threshold, criteria) if curated else (scale, curated)
            if key in seen:
                continue
            seen.add(key)
            points.append(
                Point(
                    len(points),
                    scale,
                    curated,
                    threshold if curated else None,
                    criteria if curated else None,
                )
            )
        return points


class GridError(ValueError):
    """A grid file that cannot be used; the message names the file and the problem."""


def _require(mapping: dict[str, Any], key: str, where: str, path: Path) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise GridError(f"{path}: missing key {where}{key}")
    return mapping[key]


def resolve_path(value: str | Path, path: Path, key: str) -> Path:
    """A recipe from the grid: a file path or a packaged recipe name.

    A file as given (relative to the working directory), else a packaged recipe (``pretrain/tiny``,
    ``tasks/retrieval/synth.yaml``, ``configs/...``).
    """
    try:
        return resolve_recipe(value).resolve()
    except RecipeNotFoundError as err:
        raise GridError(f"{path}: {key}: {err}") from None


def _scale(value: Any, path: Path) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GridError(f"{path}: axes.scale: {value!r} is not a clip count or a fraction")
    if isinstance(value, int):
        if value < 1:
            raise GridError(f"{path}: axes.scale: a clip count must be >= 1, got {value}")
        return value
    if not 0.0 < value <= 1.0:
        raise GridError(f"{path}: axes.scale: a fraction must be in (0, 1], got {value}")
    return float(value)


def parse_criteria(value: Any, where: str = "criteria") -> tuple[str, ...]:
    """``"instance+temporal"`` or ``[instance, temporal]`` -> stages in the paper's order.

    ``"none"`` or ``[]`` switches every stage off.
    """
    items = value.split("+") if isinstance(value, str) else list(value)
    items = [str(i).strip() for i in items if str(i).strip() and str(i).strip() != "none"]
    unknown = [i for i in items if i not in STAGES]
    if unknown:
        raise ValueError(f"{where}: unknown criteria {unknown}; expected some of {list(STAGES)}")
    return tuple(s for s in STAGES if s in items)


def _axes(raw: dict[str, Any], path: Path) -> dict[str, list[Any]]:
    axes = _require(raw, "axes", "", path)
    unknown = set(axes) - set(AXES)
    if unknown:
        raise GridError(f"{path}: unknown axes {sorted(unknown)}; expected some of {AXES}")
    values = {}
    for axis in AXES:
        items = axes.get(axis, {"curated": [False], "scale": None}.get(axis, [None]))
        if items is None:
            raise GridError(f"{path}: missing key axes.scale")
        if not isinstance(items, list) or not items:
            raise GridError(f"{path}: axes.{axis} must be a non-empty list")
        values[axis] = items
    values["scale"] = [_scale(v, path) for v in values["scale"]]
    if any(not isinstance(v, bool) for v in values["curated"]):
        raise GridError(f"{path}: axes.curated must list true/false")
    if True in values["curated"]:
        for axis in ("threshold", "criteria"):
            if axis not in axes:
                raise GridError(f"{path}: missing key axes.{axis} (curated points need it)")
        for t in values["threshold"]:
            if isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 <= t <= 1.0:
                raise GridError(f"{path}: axes.threshold: {t!r} is not a number in [0, 1]")
        try:
            values["criteria"] = [parse_criteria(c, "axes.criteria") for c in values["criteria"]]
        except ValueError as err:
            raise GridError(f"{path}: {err}") from err
        values["threshold"] = [float(t) for t in values["threshold"]]
    return values


def _stage(raw: dict[str, Any], where: str, path: Path, name: str | None = None) -> Stage:
    recipe = resolve_path(_require(raw, "recipe", where, path), path, f"{where}recipe")
    budget = _require(raw, "budget", where, path)
    if not isinstance(budget, dict) or not budget or set(budget) - set(BUDGET_KEYS):
        raise GridError(f"{path}: {where}budget must set some of {BUDGET_KEYS}, got {budget!r}")
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise GridError(f"{path}: {where}overrides must map dotted keys to values")
    metrics = raw.get("metrics")
    return Stage(name or raw.get("name", "pretrain"), recipe, budget, overrides, metrics)


def load_grid(path: str | Path, out: str | Path | None = None) -> Grid:
    """Read and validate a grid file.

    Args:
        path: the grid YAML, or a packaged grid's name (``ablate/tiny``).
        out: output folder overriding the file's ``out``.

    Raises:
        GridError: naming the file and the missing or bad key.
    """
    try:
        path = resolve_recipe(path)
    except RecipeNotFoundError as err:
        raise GridError(f"grid {err}") from None
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise GridError(f"{path}: a grid file is a YAML mapping")
    name = str(_require(raw, "name", "", path))
    data = _require(raw, "data", "", path)
    _require(data, "pool", "data.", path)
    axes = _axes(raw, path)
    if True in axes["curated"]:
        _require(data, "scores", "data.", path)
    mode = raw.get("threshold_mode", "score")
    if mode not in THRESHOLD_MODES:
        raise GridError(f"{path}: threshold_mode must be one of {THRESHOLD_MODES}, got {mode!r}")
    probes_raw = _require(raw, "probes", "", path)
    if not isinstance(probes_raw, list):
        raise GridError(f"{path}: probes must be a list")
    probes = []
    for i, probe in enumerate(probes_raw):
        probe_name = _require(probe, "name", f"probes[{i}].", path)
        probes.append(_stage(probe, f"probes[{i}].", path, str(probe_name)))
    if len({p.name for p in probes}) != len(probes):
        raise GridError(f"{path}: probe names must be unique")
    return Grid(
        path=path.resolve(),
        name=name,
        out=Path(out or raw.get("out") or Path("runs") / "ablate" / name),
        data=data,
        axes=axes,
        threshold_mode=mode,
        pretrain=_stage(_require(raw, "pretrain", "", path), "pretrain.", path),
        probes=probes,
        subset_seed=int(raw.get("subset_seed", 0)),
        shard_size=int(raw.get("shard_size", 256)),
        wandb_project=str(raw.get("wandb_project", "avpretrain-ablation")),
        sbatch=dict(raw.get("sbatch") or {}),
    )
