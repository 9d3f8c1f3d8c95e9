"""The curation report: what each stage kept, scores and categories before and after, histograms.

Written beside the filtered shards as ``report.json`` (machine-readable), ``report.md`` (for
people) and ``hist_<score>.png`` (score distributions before and after filtering).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from avpretrain.curation.filter import FilterResult
from avpretrain.curation.scores import SCORE_NAMES

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 6) if values else None


def _values(scores: Sequence[Mapping[str, float | None]], key: str) -> list[float]:
    return [v for s in scores if (v := s.get(key)) is not None]


def build_report(
    scores: Sequence[Mapping[str, float | None]],
    categories: Sequence[str | None],
    result: FilterResult,
    corruptions: Sequence[str | None] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The report as a dict.

    Args:
        scores: per clip scores (all clips, before filtering).
        categories: per clip category (None where unknown).
        result: the filter's decision.
        corruptions: per clip, the known corruption (``"clean"`` if none; None: unknown, as for
            real data); when any is known the report counts them before and after.
        extra: further top-level fields (inputs, thresholds, embedders).

    Returns:
        ``{total, kept, stages: [{name, entered, kept, skipped, retained, thresholds, active}],
        mean_scores: {before, after}, categories: {before, after}, ...extra}`` where
        ``retained`` is the share of all clips left after the stage.
    """
    total = len(scores)
    kept_scores = [s for s, k in zip(scores, result.keep, strict=True) if k]
    kept_cats = [c for c, k in zip(categories, result.keep, strict=True) if k]
    stages = [
        {**asdict(st), "retained": round(st.kept / total, 6) if total else None}
        for st in result.stages
    ]
    report: dict[str, Any] = {
        "total": total,
        "kept": len(kept_scores),
        "stages": stages,
        "mean_scores": {
            "before": {k: _mean(_values(scores, k)) for k in SCORE_NAMES},
            "after": {k: _mean(_values(kept_scores, k)) for k in SCORE_NAMES},
        },
        "categories": {
            "before": dict(Counter(str(c) for c in categories).most_common()),
            "after": dict(Counter(str(c) for c in kept_cats).most_common()),
        },
        **extra,
    }
    if corruptions is not None and any(c is not None for c in corruptions):
        known = [(str(c), k) for c, k in zip(corruptions, result.keep, strict=True)]
        report["corruptions"] = {
            "before": dict(Counter(c for c, _ in known).most_common()),
            "after": dict(Counter(c for c, k in known if k).most_common()),
        }
    return report


def plot_histograms(
    scores: Sequence[Mapping[str, float | None]], keep: Sequence[bool], out_dir: Path
) -> list[Path]:
    """One PNG per score that has values: its distribution before and after filtering."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = [s for s, k in zip(scores, keep, strict=True) if k]
    paths = []
    bins = np.linspace(0.0, 1.0, 41)
    for key in SCORE_NAMES:
        before = _values(scores, key)
        if not before:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.2))
        # matplotlib's stubs want a Sequence; an array of edges works the same
        ax.hist(before, bins=bins, alpha=0.5, label=f"before ({len(before)})")  # type: ignore[arg-type]
        ax.hist(
            _values(kept, key),
            bins=bins,  # type: ignore[arg-type]
            alpha=0.5,
            label=f"after ({len(_values(kept, key))})",
        )
        ax.set(xlabel=f"{key} score", ylabel="clips", title=f"{key} alignment")
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"hist_{key}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def to_markdown(report: Mapping[str, Any], histograms: Sequence[Path] = ()) -> str:
    """The report as a Markdown page."""
    total = report["total"]
    lines = [
        "# Curation report",
        "",
        f"{report['kept']} of {total} clips kept.",
        "",
        "| stage | active | entered | kept | without score | retained share | thresholds |",
        "|---|---|---|---|---|---|---|",
    ]
    for st in report["stages"]:
        limits = ", ".join(f"{k} >= {v:.3f}" for k, v in st["thresholds"].items()) or "-"
        lines.append(
            f"| {st['name']} | {'yes' if st['active'] else 'no'} | {st['entered']} | {st['kept']}"
            f" | {st['skipped']} | {_fmt(st['retained'])} | {limits} |"
        )
    lines += ["", "## Mean scores", "", "| score | before | after |", "|---|---|---|"]
    means = report["mean_scores"]
    for key in SCORE_NAMES:
        lines.append(f"| {key} | {_fmt(means['before'][key])} | {_fmt(means['after'][key])} |")
    lines += ["", "## Categories", "", "| category | before | after |", "|---|---|---|"]
    cats = report["categories"]
    for name, count in cats["before"].items():
        lines.append(f"| {name} | {count} | {cats['after'].get(name, 0)} |")
    if "corruptions" in report:
        bad = report["corruptions"]
        lines += ["", "## Known corruptions (synthetic ground truth)", ""]
        lines += ["| kind | before | after |", "|---|---|---|"]
        for name, count in bad["before"].items():
            lines.append(f"| {name} | {count} | {bad['after'].get(name, 0)} |")
    if histograms:
        lines += ["", "## Score distributions", ""]
        lines += [f"![{p.stem}]({p.name})" for p in histograms]
    return "\n".join(lines) + "\n"


def write_report(
    out_dir: str | Path,
    scores: Sequence[Mapping[str, float | None]],
    categories: Sequence[str | None],
    result: FilterResult,
    corruptions: Sequence[str | None] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and the histograms to ``out_dir``; return the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = build_report(scores, categories, result, corruptions, **extra)
    histograms = plot_histograms(scores, result.keep, out_dir)
    report["histograms"] = [p.name for p in histograms]
    (out_dir / REPORT_JSON).write_text(json.dumps(report, indent=1))
    (out_dir / REPORT_MD).write_text(to_markdown(report, histograms))
    return report
