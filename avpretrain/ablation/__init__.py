"""Curation and scaling ablations: a grid of training subsets, each pretrained and probed."""

from avpretrain.ablation.grid import Grid, GridError, Point, load_grid
from avpretrain.ablation.run import run_point
from avpretrain.ablation.subset import build_subset, select
from avpretrain.ablation.summary import write_summary

__all__ = [
    "Grid",
    "GridError",
    "Point",
    "build_subset",
    "load_grid",
    "run_point",
    "select",
    "write_summary",
]
