"""Curation (ACAV-1M's alignment filter): embedders, alignment scores, the staged filter, reports.

``avpretrain curate`` (:mod:`avpretrain.curation.cli`) runs them over a shard set. The CLAP and
CLIP embedders live in :mod:`avpretrain.curation.hf_embedders`, imported only when used; the own
model's caption side (a fitted retrieval head) in :mod:`avpretrain.curation.text_tower`.
"""

from avpretrain.curation.embedders import AVMAEEmbedder, Embedder
from avpretrain.curation.filter import STAGES, FilterResult, StageResult, filter_scores
from avpretrain.curation.report import write_report
from avpretrain.curation.scores import (
    ClipInput,
    ScoreModels,
    normalized_cosine,
    score_clips,
    temporal_score,
)
from avpretrain.curation.text_tower import TextTower, load_text_tower, save_text_tower

__all__ = [
    "STAGES",
    "AVMAEEmbedder",
    "ClipInput",
    "Embedder",
    "FilterResult",
    "ScoreModels",
    "StageResult",
    "TextTower",
    "filter_scores",
    "load_text_tower",
    "normalized_cosine",
    "save_text_tower",
    "score_clips",
    "temporal_score",
    "write_report",
]
