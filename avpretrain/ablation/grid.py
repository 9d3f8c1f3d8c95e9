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
from argparse import ArgumentError
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from avpretrain.arguments import field_values
from avpretrain.curation.filter import STAGES
from avpretrain.recipes import RecipeNotFoundError, resolve_recipe

ThresholdMode = Literal["score", "quantile"]


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


def parse_criteria(value: str | list[str], where: str = "criteria") -> tuple[str, ...]:
    """``"instance+temporal"`` or ``[instance, temporal]`` -> stages in the paper's order.

    ``"none"`` or ``[]`` switches every stage off.
    """
    items = value.split("+") if isinstance(value, str) else list(value)
    items = [str(i).strip() for i in items if str(i).strip() and str(i).strip() != "none"]
    unknown = [i for i in items if i not in STAGES]
    if unknown:
        raise ValueError(f"{where}: unknown criteria {unknown}; expected some of {list(STAGES)}")
    return tuple(s for s in STAGES if s in items)


@dataclass
class GridData:
    """The shards of a grid.

    Args:
        pool: the shards subsets are drawn from.
        scores: ``avpretrain curate``'s score cache (needed by curated points).
        probe_train: the probes' train shards (else the probe recipe's).
        probe_val: the probes' val shards (else the probe recipe's).
    """

    pool: str
    scores: str | None = None
    probe_train: str | None = None
    probe_val: str | None = None


@dataclass
class Axes:
    """The axes of a grid; uncurated points ignore ``threshold`` and ``criteria``.

    Args:
        scale: clips per point: an int is a count (>= 1), a float in (0, 1] a fraction.
        curated: whether the alignment filter selects the clips (Table 10).
        threshold: the similarity threshold of every active stage, in [0, 1] (Table 12).
        criteria: the stages switched on, ``"instance+temporal"`` or a list (Table 11).
    """

    scale: list[int | float]
    curated: list[bool] = field(default_factory=lambda: [False])
    threshold: list[float] | None = None
    criteria: list[str | list[str]] | None = None

    def __post_init__(self) -> None:
        for axis in ("scale", "curated"):
            if not getattr(self, axis):
                raise ValueError(f"axes.{axis} must be a non-empty list")
        for value in self.scale:
            if isinstance(value, int) and value < 1:
                raise ValueError(f"axes.scale: a clip count must be >= 1, got {value}")
            if isinstance(value, float) and not 0.0 < value <= 1.0:
                raise ValueError(f"axes.scale: a fraction must be in (0, 1], got {value}")
        if True in self.curated:
            for axis in ("threshold", "criteria"):
                if not getattr(self, axis):
                    raise ValueError(f"missing key axes.{axis} (curated points need it)")
            for t in self.threshold or ():
                if not 0.0 <= t <= 1.0:
                    raise ValueError(f"axes.threshold: {t!r} is not a number in [0, 1]")
            self.criteria_sets()

    def thresholds(self) -> list[float | None]:
        """The threshold axis; ``[None]`` when the grid has no curated point."""
        return [*self.threshold] if self.threshold and True in self.curated else [None]

    def criteria_sets(self) -> list[tuple[str, ...] | None]:
        """The criteria axis parsed; ``[None]`` when the grid has no curated point."""
        if not self.criteria or True not in self.curated:
            return [None]
        return [parse_criteria(c, "axes.criteria") for c in self.criteria]


@dataclass
class Budget:
    """What bounds a stage's training; at least one is set.

    Args:
        max_steps: optimiser steps.
        max_epochs: epochs.
        max_time: wall clock, ``"DD:HH:MM:SS"`` or ``{hours: ..., minutes: ...}``.
    """

    max_steps: int | None = None
    max_epochs: int | None = None
    max_time: str | dict[str, int] | None = None

    def __post_init__(self) -> None:
        if not self.trainer_args():
            raise ValueError(f"budget must set some of {tuple(f.name for f in fields(self))}")

    def trainer_args(self) -> dict[str, Any]:
        """The set limits, as ``Trainer`` arguments."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in values.items() if v is not None}


@dataclass(kw_only=True)
class Stage:
    """A recipe with its budget and overrides: the pretraining, or one probe.

    Args:
        recipe: a recipe file, or a packaged recipe's name (``tasks/retrieval/synth.yaml``).
        budget: the training limits replacing the recipe's.
        overrides: dotted keys into the recipe -> values.
        metrics: the validation metrics tabulated (default: all).
        name: the stage's name in run folders and W&B.
    """

    recipe: Path
    budget: Budget
    overrides: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] | None = None
    name: str = "pretrain"


@dataclass(kw_only=True)
class Probe(Stage):
    """A probe of the pretrained encoders: a :class:`Stage` with its own (unique) name."""

    name: str = field()  # required: a bare annotation would inherit Stage's default


@dataclass(kw_only=True)
class Grid:
    """A grid file (see the module docstring).

    Args:
        name: the W&B group and default output folder name.
        data: the shards.
        axes: the grid's axes.
        pretrain: the pretraining of every point.
        probes: the probes of every point's encoders.
        out: the results folder (default ``runs/ablate/<name>``).
        threshold_mode: ``score`` (absolute similarity) or ``quantile`` (as ``curate --quantile``).
        subset_seed: seed of the subsets' random draws.
        shard_size: clips per shard of the subsets.
        wandb_project: the W&B project.
        sbatch: ``#SBATCH`` options of the cluster script.
        path: the grid file (set by :func:`load_grid`).
    """

    name: str
    data: GridData
    axes: Axes
    pretrain: Stage
    probes: list[Probe]
    out: Path
    threshold_mode: ThresholdMode = "score"
    subset_seed: int = 0
    shard_size: int = 256
    wandb_project: str = "avpretrain-ablation"
    sbatch: dict[str, Any] = field(default_factory=dict)
    path: Path = Path()

    def __post_init__(self) -> None:
        if True in self.axes.curated and self.data.scores is None:
            raise ValueError("missing key data.scores (curated points need it)")
        if len({p.name for p in self.probes}) != len(self.probes):
            raise ValueError("probe names must be unique")
        stages = [("pretrain", self.pretrain)] + [
            (f"probes[{i}]", p) for i, p in enumerate(self.probes)
        ]
        for where, stage in stages:
            try:
                stage.recipe = resolve_recipe(stage.recipe).resolve()
            except RecipeNotFoundError as err:
                raise ValueError(f"{where}.recipe: {err}") from None

    def points(self) -> list[Point]:
        """The grid points in a fixed order (scale varies fastest), uncurated ones deduplicated."""
        seen: set[tuple] = set()
        points: list[Point] = []
        combos = itertools.product(
            self.axes.curated, self.axes.thresholds(), self.axes.criteria_sets(), self.axes.scale
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


def load_grid(path: str | Path, out: str | Path | None = None) -> Grid:
    """Read and validate a grid file against :class:`Grid`.

    Args:
        path: the grid YAML, or a packaged grid's name (``ablate/tiny``).
        out: output folder overriding the file's ``out``.

    Raises:
        GridError: naming the file and the missing or bad key.
    """
    from jsonargparse import ArgumentParser

    try:
        path = resolve_recipe(path)
    except RecipeNotFoundError as err:
        raise GridError(f"grid {err}") from None
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict):
        raise GridError(f"{path}: a grid file is a YAML mapping")
    raw["out"] = str(out or raw.get("out") or Path("runs") / "ablate" / str(raw.get("name")))
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(Grid, skip={"path"})
    try:
        grid = Grid(**field_values(parser.instantiate(parser.parse_object(raw)), Grid))
    except (ValueError, ArgumentError) as err:
        raise GridError(f"{path}: {err}") from None
    grid.path = path.resolve()
    return grid
