"""The ablation's summary: a table of grid values against final metrics, and a scaling plot.

Built from the points' ``result.json`` files (see :mod:`avpretrain.ablation.run`), so a cluster
run's finished points can be collected at any time::

    summary.md  summary.csv   one row per point: axis values, clips, metrics
    scaling.png               per probe metric, metric against clips (log x), one line per
                              setting of the other axes (uncurated, curated t=0.5 instance, ...)
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
AXIS_COLUMNS = ("index", "scale", "clips", "curated", "threshold", "criteria")
PRETRAIN_METRICS = ("train/loss",)


def read_results(out: str | Path) -> list[dict[str, Any]]:
    """The ``result.json`` of every finished point under ``out/runs/``, by index."""
    results = []
    for path in sorted(Path(out).glob("runs/*/result.json")):
        try:
            results.append(json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not a JSON result: {err}") from err
    return sorted(results, key=lambda r: r["index"])


def metric_columns(results: Sequence[dict[str, Any]]) -> list[str]:
    """``<probe>/<metric>`` columns, in first-seen order; of the pretraining only its loss."""
    columns: dict[str, None] = {}
    for result in results:
        for stage, metrics in result["metrics"].items():
            for name in metrics:
                if stage != "pretrain" or name in PRETRAIN_METRICS:
                    columns[f"{stage}/{name}"] = None
    return list(columns)


def _value(result: dict[str, Any], column: str) -> Any:
    if column in AXIS_COLUMNS:
        return result.get(column)
    stage, metric = column.split("/", 1)
    return result["metrics"].get(stage, {}).get(metric)


def table_rows(results: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the summary table (missing metrics are None)."""
    header = [*AXIS_COLUMNS, *metric_columns(results)]
    return header, [[_value(r, c) for c in header] for r in results]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_table(results: Sequence[dict[str, Any]], out: str | Path) -> tuple[Path, Path]:
    """Write ``summary.md`` and ``summary.csv`` into ``out``; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header, rows = table_rows(results)
    md = out / "summary.md"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    md.write_text("\n".join(lines) + "\n")
    path = out / "summary.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
    return md, path


def setting_label(result: dict[str, Any]) -> str:
    """The other axes' setting of a point: ``uncurated`` or ``curated t=0.5 instance+temporal``."""
    if not result.get("curated"):
        return "uncurated"
    return f"curated t={result['threshold']:g} {result['criteria'] or 'none'}"


def scaling_figure(results: Sequence[dict[str, Any]]) -> Any:
    """Every probe metric against clips (log x), one subplot per metric, one line per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in metric_columns(results) if not c.startswith("pretrain/")]
    columns = columns or metric_columns(results)
    fig, axes = plt.subplots(1, max(1, len(columns)), figsize=(5 * max(1, len(columns)), 4))
    axes = list(axes) if len(columns) > 1 else [axes]
    for ax, column in zip(axes, columns, strict=False):
        lines: dict[str, list[tuple[int, float]]] = {}
        for r in results:
            value = _value(r, column)
            if value is not None:
                lines.setdefault(setting_label(r), []).append((r["clips"], value))
        for label, points in lines.items():
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, marker="o", label=label)
        ax.set_xscale("log")
        clips = sorted({r["clips"] for r in results})  # label the measured scales, plainly
        ax.set_xticks(clips, [str(c) for c in clips])
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlabel("training clips")
        ax.set_ylabel(column)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def write_plot(results: Sequence[dict[str, Any]], out: str | Path) -> Path:
    """Save :func:`scaling_figure` as ``out/scaling.png``."""
    import matplotlib.pyplot as plt

    fig = scaling_figure(results)
    path = Path(out) / "scaling.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_summary(out: str | Path) -> dict[str, Path]:
    """Collect ``out``'s finished points into the table and the plot.

    Raises:
        FileNotFoundError: no point under ``out/runs/`` has finished.
    """
    results = read_results(out)
    if not results:
        raise FileNotFoundError(f"{out}: no finished point (runs/*/result.json) to collect")
    md, csv_path = write_table(results, out)
    return {"markdown": md, "csv": csv_path, "plot": write_plot(results, out)}
