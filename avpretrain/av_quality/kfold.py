r"""K-fold cross-validation of an ``av_quality`` recipe: fit and validate once per fold, summarise.

A fold is a shard folder. Fold k trains on every other fold and validates on fold k: the
driver only replaces the recipe's ``data.init_args.train_urls`` / ``val_urls``, so choosing a
fold is data configuration and nothing inside the loader filters clips. The folds come from

- a converter's manifest, whose rows carry ``annotations.fold`` (``convert-yt-ntu-avq``,
  ``convert-sfqa`` with folds grouped by source): :func:`split_manifest` writes one manifest per
  fold, each ingested into its own folder;
- the synthetic quality world: ``avpretrain synth-quality --folds K`` writes ``fold0 ..``.

Each fold runs ``fit`` through the same LightningCLI path as ``avpretrain fit`` and is then
validated once more with its final weights (not a checkpoint chosen on the validation fold,
which would flatter the score). The per-fold ``val/<target>/<metric>`` figures and their mean and
standard deviation over folds (:func:`avpretrain.metrics.av_quality.fold_summary`, ``ddof=0``) are
written as ``fold_summary.json`` and ``fold_summary.md``, updated after every fold::

    avpretrain av-quality-kfold split yt_ntu_avq.jsonl --out manifests/
    avpretrain av-quality-kfold run --config tasks/av_quality/yt_ntu_avq.yaml \
        --folds data/yt_ntu_avq/fold0 data/yt_ntu_avq/fold1 ... --out runs/yt_ntu_avq_kfold \
        --model.init_args.encoders encoders.pt

Arguments after the driver's own are LightningCLI overrides applied to every fold.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from avpretrain.metrics.av_quality import METRIC_NAMES, fold_summary

log = logging.getLogger(__name__)

__all__ = [
    "fold_metrics",
    "fold_recipe",
    "fold_urls",
    "run_kfold",
    "split_manifest",
    "summary_markdown",
    "write_fold_summary",
]


def fold_urls(folds: Sequence[str], k: int) -> tuple[list[str], str]:
    """``(train_urls, val_url)`` of fold ``k``: every other fold trains, fold ``k`` validates."""
    if len(folds) < 2:
        raise ValueError(f"k-fold needs at least 2 folds, got {len(folds)}")
    if len(set(map(str, folds))) != len(folds):
        raise ValueError(f"folds must be distinct, got {list(folds)}")
    if not 0 <= k < len(folds):
        raise ValueError(f"fold {k} outside 0..{len(folds) - 1}")
    return [str(f) for i, f in enumerate(folds) if i != k], str(folds[k])


def split_manifest(manifest: str | Path, out_dir: str | Path) -> list[Path]:
    """Split a JSON Lines manifest by ``annotations.fold`` into ``<stem>.fold<k>.jsonl``.

    Args:
        manifest: a converter's manifest; every row needs an integer ``annotations.fold``.
        out_dir: folder for the per-fold manifests.

    Returns:
        The per-fold manifests, fold 0 first (folds 0..max all present).
    """
    manifest = Path(manifest)
    rows: dict[int, list[str]] = {}
    with manifest.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{manifest}:{line_no}"
            try:
                fold = json.loads(line).get("annotations", {}).get("fold")
            except (json.JSONDecodeError, AttributeError):
                raise ValueError(f"{where}: not a JSON object with annotations") from None
            if not isinstance(fold, int) or isinstance(fold, bool) or fold < 0:
                raise ValueError(f"{where}: annotations.fold is {fold!r}, not a fold index >= 0")
            rows.setdefault(fold, []).append(line.rstrip("\n") + "\n")
    if not rows:
        raise ValueError(f"{manifest}: no rows")
    empty = [k for k in range(max(rows) + 1) if k not in rows]
    if empty:
        raise ValueError(f"{manifest}: fold(s) {empty} have no rows")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(len(rows)):
        path = out / f"{manifest.stem}.fold{k}.jsonl"
        path.write_text("".join(rows[k]), encoding="utf-8")
        paths.append(path)
    return paths


def fold_recipe(cfg: dict[str, Any], folds: Sequence[str], k: int, run_dir: Path) -> dict:
    """A copy of the recipe ``cfg`` for fold ``k``.

    With its data urls, and runs (CSV logs, checkpoints) under ``run_dir``.
    """
    out = copy.deepcopy(cfg)
    train, val = fold_urls(folds, k)
    out["data"]["init_args"].update(train_urls=train, val_urls=val)
    out["trainer"].update(
        default_root_dir=str(run_dir),
        logger={
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": str(run_dir)},
        },
    )
    return out


def fold_metrics(logged: Mapping[str, Any], stage: str = "val") -> dict[str, dict[str, float]]:
    """``{target: {metric: value}}`` from logged ``<stage>/<target>/<metric>`` values."""
    out: dict[str, dict[str, float]] = {}
    for key, value in logged.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == stage and parts[2] in METRIC_NAMES:
            out.setdefault(parts[1], {})[parts[2]] = float(value)
    for target, metrics in out.items():
        missing = [m for m in METRIC_NAMES if m not in metrics]
        if missing:
            raise ValueError(f"target {target!r} lacks logged metric(s) {missing}")
        out[target] = {m: metrics[m] for m in METRIC_NAMES}
    return out


def summary_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: per target, one row per fold, then mean and std."""
    lines = [f"# av_quality {len(report['folds'])}-fold cross-validation", ""]
    lines += [f"Recipe: `{report['recipe']}`.", ""]
    if report.get("overrides"):
        lines += [f"Overrides: `{' '.join(report['overrides'])}`.", ""]
    lines += [
        "PLCC is on the raw predictions; PLCC_logistic and RMSE_logistic after the "
        "four-parameter logistic fit. Std over folds is the population one (ddof=0).",
        "",
    ]
    head = "| fold | val | " + " | ".join(METRIC_NAMES) + " |"
    rule = "|---|---|" + "---|" * len(METRIC_NAMES)
    for target, summary in report["summary"].items():
        lines += [f"## {target}", "", head, rule]
        for fold in report["folds"]:
            values = " | ".join(f"{fold['metrics'][target][m]:.4f}" for m in METRIC_NAMES)
            lines.append(f"| {fold['fold']} | {fold['val']} | {values} |")
        for stat in ("mean", "std"):
            values = " | ".join(f"{summary[f'{m}_{stat}']:.4f}" for m in METRIC_NAMES)
            lines.append(f"| {stat} | | {values} |")
        lines.append("")
    return "\n".join(lines)


def write_fold_summary(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``fold_summary.json`` and ``fold_summary.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "fold_summary.json", out / "fold_summary.md"
    json_path.write_text(json.dumps(report, indent=1))
    md_path.write_text(summary_markdown(report))
    return json_path, md_path


def _summarise(folds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    targets = list(folds[0]["metrics"])
    return {t: fold_summary([f["metrics"][t] for f in folds]) for t in targets}


def run_fold(path: Path, overrides: Sequence[str]) -> tuple[dict[str, dict[str, float]], int]:
    """Fit the recipe at ``path`` (plus LightningCLI ``overrides``); validate its final weights.

    Returns ``({target: {metric: value}}, training steps)``.
    """
    from avpretrain.lightning_cli import run_lightning_cli

    cli = run_lightning_cli(["fit", "--config", str(path), *overrides])
    logged = cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)[0]
    metrics = fold_metrics(logged)
    if not metrics:
        raise ValueError(f"{path}: validation logged no val/<target>/<metric> figures")
    return metrics, cli.trainer.global_step


def run_kfold(
    recipe: str | Path,
    folds: Sequence[str],
    out_dir: str | Path,
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """Run every fold of ``recipe`` and write the fold summary after each.

    Args:
        recipe: an ``av_quality`` recipe YAML (``tasks/av_quality/*.yaml``).
        folds: K >= 2 shard folders (or shard specifications), fold 0 first.
        out_dir: gets ``fold<k>/`` (each fold's recipe, logs, checkpoints) and the summary.
        overrides: LightningCLI arguments applied to every fold (``--model.init_args.inputs
            video``, ``--trainer.max_epochs 5``, ...).

    Returns:
        ``{recipe, overrides, folds: [{fold, train, val, steps, metrics: {target: {metric}}}],
        summary: {target: {<metric>_mean, <metric>_std, folds}}}``.
    """
    cfg = yaml.safe_load(Path(recipe).read_text())
    for k in range(len(folds)):
        fold_urls(folds, k)  # bad fold lists fail before the first fit
    out = Path(out_dir)
    report: dict[str, Any] = {"recipe": str(recipe), "overrides": list(overrides), "folds": []}
    for k in range(len(folds)):
        run_dir = out / f"fold{k}"
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg_k = fold_recipe(cfg, folds, k, run_dir)
        path = run_dir / "recipe.yaml"
        path.write_text(yaml.safe_dump(cfg_k, sort_keys=False))
        log.info("fold %d/%d: validating on %s", k + 1, len(folds), folds[k])
        train, val = fold_urls(folds, k)
        metrics, steps = run_fold(path, overrides)
        if steps == 0:
            log.warning("fold %d trained for 0 steps: fewer training clips than a batch?", k)
        fold = {"fold": k, "train": train, "val": val, "steps": steps, "metrics": metrics}
        report["folds"].append(fold)
        report["summary"] = _summarise(report["folds"])
        write_fold_summary(report, out)
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="avpretrain av-quality-kfold",
        description="K-fold cross-validation of an av_quality recipe (per-fold shard folders).",
        allow_abbrev=False,
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="fit and validate every fold; further arguments are LightningCLI overrides",
        allow_abbrev=False,
    )
    run.add_argument("--config", required=True, help="av_quality recipe YAML")
    run.add_argument("--folds", nargs="+", required=True, help="fold shard folders, fold 0 first")
    run.add_argument("--out", required=True, help="folder for the fold runs and fold_summary")
    split = sub.add_parser("split", help="split a manifest by annotations.fold", allow_abbrev=False)
    split.add_argument("manifest", help="JSON Lines manifest of a converter")
    split.add_argument("--out", required=True, help="folder for <stem>.fold<k>.jsonl")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``avpretrain av-quality-kfold``; 0 on success, 2 on bad input."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "split" and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "split":
            paths = split_manifest(args.manifest, args.out)
            print(json.dumps({"folds": [str(p) for p in paths]}))
            return 0
        report = run_kfold(args.config, args.folds, args.out, extra)
    except (ValueError, FileNotFoundError) as err:
        print(f"avpretrain av-quality-kfold: error: {err}", file=sys.stderr)
        return 2
    print(summary_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
