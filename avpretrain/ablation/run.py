"""One grid point end to end: subset, pretraining, encoder export, probes, result JSON.

Every fit goes through :func:`avpretrain.lightning_cli.run_lightning_cli`, the path of
``avpretrain fit``, on the recipe YAML with the grid's overrides and budget written into it. Each
fit logs to its own W&B run (offline unless ``WANDB_MODE`` says otherwise) in the grid's group,
with the point's axis values in the run config and its final metrics in the run summary.

A point's folder ``<out>/runs/<point name>/`` ends up with::

    subset/        the training clips as shards (index.json)
    pretrain/      the pretraining run (checkpoints, W&B), encoders.pt
    probe_<name>/  each probe's run
    result.json    axis values, clip count, final metrics: what ``--collect`` tabulates
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import yaml

from avpretrain.ablation.grid import Grid, Point, Stage
from avpretrain.ablation.subset import build_subset
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.models.encoder_file import save_encoders

log = logging.getLogger(__name__)
RESULT = "result.json"


def set_dotted(cfg: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(cfg, "data.init_args.batch_size", 8)``; missing mappings are created.

    Raises:
        ValueError: a key part runs into a value that is not a mapping.
    """
    node = cfg
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {key!r}: {part!r} is not a mapping")
    node[parts[-1]] = value


def _plain(value: Any) -> Any:
    """A logged metric as a JSON number."""
    return float(value.item() if hasattr(value, "item") else value)


def stage_config(
    stage: Stage, run_dir: Path, run_name: str, group: str, project: str, config: dict[str, Any]
) -> dict[str, Any]:
    """A stage's recipe with its overrides, its budget, and its outputs and W&B run redirected.

    Args:
        stage: the pretraining or a probe from the grid.
        run_dir: the folder its checkpoints, figures and W&B files go to.
        run_name: the W&B run name.
        group: the W&B group shared by the whole grid.
        project: the W&B project.
        config: values recorded in the W&B run config (the point's axis values, ...).
    """
    cfg = yaml.safe_load(stage.recipe.read_text())
    for key, value in stage.overrides.items():
        set_dotted(cfg, key, value)
    trainer = cfg.setdefault("trainer", {})
    for key in ("max_steps", "max_epochs", "max_time"):
        trainer.pop(key, None)  # the grid's budget alone bounds the run
    budget = stage.budget.trainer_args()
    trainer.update(budget)
    if "max_epochs" not in budget:
        trainer["max_epochs"] = -1 if "max_steps" in budget else 1000
    trainer.update(
        default_root_dir=str(run_dir), enable_progress_bar=False, enable_model_summary=False
    )
    trainer["logger"] = {
        "class_path": "lightning.pytorch.loggers.WandbLogger",
        "init_args": {
            "project": project,
            "name": run_name,
            "save_dir": str(run_dir),
            "offline": os.environ.get("WANDB_MODE", "offline") == "offline",
            "group": group,
            "job_type": stage.name,
            "config": {"ablation": config},
        },
    }
    for callback in trainer.get("callbacks") or []:
        if callback.get("class_path", "").endswith("ModelCheckpoint"):
            callback.setdefault("init_args", {})["dirpath"] = str(run_dir / "checkpoints")
    return cfg


def fit_stage(cfg: dict[str, Any], run_dir: Path, validate: bool) -> tuple[Any, dict[str, float]]:
    """Fit a recipe dict through LightningCLI; return the CLI and its final metrics.

    With ``validate`` the metrics are a final validation pass's, else the last logged ones.
    The W&B run gets them as its summary and is finished (flushed to disk).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cli = run_lightning_cli(["fit", "--config", str(path)])
    raw: Mapping[str, Any]
    if validate:
        raw = cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)[0]
    else:
        raw = dict(cli.trainer.callback_metrics)
    metrics = {k: _plain(v) for k, v in raw.items()}
    metrics["global_step"] = float(cli.trainer.global_step)
    if cli.trainer.is_global_zero:  # other ranks hold a dummy W&B run
        experiment = cast(Any, cli.trainer.logger).experiment  # the recipe's WandbLogger
        experiment.summary.update(metrics)
        experiment.finish()
    return cli, metrics


def _with_data(cfg: dict[str, Any], **urls: str | None) -> dict[str, Any]:
    data = cfg.setdefault("data", {}).setdefault("init_args", {})
    data.update({k: v for k, v in urls.items() if v is not None})
    return cfg


def run_point(grid: Grid, point: Point, force: bool = False) -> dict[str, Any]:
    """Run one grid point (skipped when its ``result.json`` exists, unless ``force``).

    Returns:
        the result record: axis values, clip count, seconds, and per probe its final metrics.
    """
    run_dir = grid.out / "runs" / point.name
    result_path = run_dir / RESULT
    if result_path.exists() and not force:
        log.info("ablation: %s done already (%s); not rerun", point.name, result_path)
        return json.loads(result_path.read_text())
    start = time.perf_counter()
    subset, clips = build_subset(
        point,
        grid.data.pool,
        run_dir / "subset",
        grid.data.scores,
        grid.threshold_mode == "quantile",
        grid.subset_seed,
        grid.shard_size,
    )
    config = {**point.values(), "index": point.index, "clips": clips, "grid": grid.name}
    log.info("ablation: %s: pretraining on %d clips", point.name, clips)
    pre_dir = run_dir / "pretrain"
    cfg = stage_config(
        grid.pretrain, pre_dir, f"{point.name}/pretrain", grid.name, grid.wandb_project, config
    )
    cfg = _with_data(cfg, train_urls=str(subset))
    cfg["data"]["init_args"]["val_urls"] = None
    cfg["trainer"]["limit_val_batches"] = 0  # the probes measure the encoders
    cli, pre_metrics = fit_stage(cfg, pre_dir, validate=False)
    encoders = pre_dir / "encoders.pt"
    if cli.trainer.is_global_zero:
        save_encoders(cli.model.model, encoders)
    cli.trainer.strategy.barrier("encoders")  # every rank's probes read them
    is_zero = cli.trainer.is_global_zero
    del cli
    # a rank other than zero may lack rank-zero-only metrics: None there
    metrics: dict[str, Mapping[str, float | None]] = {"pretrain": pre_metrics}
    for probe in grid.probes:
        probe_dir = run_dir / f"probe_{probe.name}"
        cfg = stage_config(
            probe, probe_dir, f"{point.name}/{probe.name}", grid.name, grid.wandb_project, config
        )
        cfg = _with_data(cfg, train_urls=grid.data.probe_train, val_urls=grid.data.probe_val)
        cfg["model"]["init_args"]["encoders"] = str(encoders)
        _, found = fit_stage(copy.deepcopy(cfg), probe_dir, validate=True)
        wanted = probe.metrics or [k for k in found if k.startswith("val/")]
        missing = [m for m in wanted if m not in found]
        if missing and is_zero:  # metrics logged rank-zero-only exist only there
            raise ValueError(
                f"{grid.path}: probe {probe.name} logged no {missing}; it logged {sorted(found)}"
            )
        metrics[probe.name] = {m: found.get(m) for m in wanted}
    result = {
        "name": point.name,
        "index": point.index,
        **point.values(),
        "clips": clips,
        "seconds": round(time.perf_counter() - start, 1),
        "metrics": metrics,
    }
    if is_zero:
        tmp = result_path.with_name(RESULT + ".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, result_path)
    return result
