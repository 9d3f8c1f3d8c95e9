"""Metrics of the downstream benchmarks, ported from each benchmark's official evaluation code.

One module per family; each docstring names the official file it follows and the quirks it
reproduces. Functions take numpy arrays or torch tensors; the ``*Metrics`` classes are
``torchmetrics.Metric`` collectors of a whole test set (``update`` per batch, ``compute`` once,
over every rank's updates under DDP) for a LightningModule.
"""

from avpretrain.metrics.classification import (
    ClassificationMetrics,
    average_precision,
    mean_average_precision,
    top1_accuracy,
)
from avpretrain.metrics.localization import (
    LocalizationMetrics,
    auc,
    binarize_heatmap,
    ciou,
    flickr_gt_map,
    localization_summary,
    vggss_gt_map,
)
from avpretrain.metrics.retrieval import (
    RetrievalMetrics,
    cosine_similarity_matrix,
    retrieval_metrics,
)
from avpretrain.metrics.segmentation import (
    SegmentationMetrics,
    f_score,
    frame_scores,
    mask_iou,
    video_means,
)
from avpretrain.metrics.slavc import SLAVCMetrics, slavc_metrics, slavc_sample

__all__ = [
    "ClassificationMetrics",
    "LocalizationMetrics",
    "RetrievalMetrics",
    "SLAVCMetrics",
    "SegmentationMetrics",
    "auc",
    "average_precision",
    "binarize_heatmap",
    "ciou",
    "cosine_similarity_matrix",
    "f_score",
    "flickr_gt_map",
    "frame_scores",
    "localization_summary",
    "mask_iou",
    "mean_average_precision",
    "retrieval_metrics",
    "slavc_metrics",
    "slavc_sample",
    "top1_accuracy",
    "vggss_gt_map",
    "video_means",
]
