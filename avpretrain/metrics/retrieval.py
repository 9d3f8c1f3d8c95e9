"""Cross-modal retrieval metrics as CLIP4Clip (and CAV-MAE's retrieval script) compute them.

Follows ArrowLuo/CLIP4Clip ``metrics.py:compute_metrics``; CAV-MAE ``src/retrieval.py`` uses the
same function on a cosine-similarity matrix of L2-normalised embeddings. Reproduced as is:

- ``sim[i, j]`` scores query ``i`` against gallery item ``j``; the ground truth is the diagonal.
- The rank of query ``i`` comes from ``np.where(sort(-sim, axis=1) - diag(-sim)[:, None] == 0)``:
  every position of the sorted row whose value *equals* the true score is one entry. Without
  ties each query gives one entry (its 0-based rank). A query whose true score ties with
  ``k - 1`` other columns gives ``k`` entries, at ranks ``r, r + 1, ..., r + k - 1``, and the
  denominator is the number of entries, not the number of queries. So R@K is neither optimistic
  nor pessimistic about ties: e.g. one query tied for first with one other column among 3
  queries gives ranks [0, 1, 0, 0] and R@1 = 75 %, where "optimistic" gives 100 % and
  "pessimistic" 66.7 %. torchmetrics' ``RetrievalRecall`` does not match.
- R@1, R@5, R@10 are percentages: ``100 * mean(ranks < K)``; ``MedianR = median(ranks) + 1``
  (an even number of entries averages the two middle ones, so it can end in .5);
  ``MeanR = mean(ranks) + 1``.
- Equality is exact floating-point equality of the similarity values (no tolerance).
- Deviation: CLIP4Clip silently drops a query whose true score is NaN (it equals nothing); here
  a non-finite similarity raises ``ValueError``. A non-square matrix also raises (CLIP4Clip's
  broadcast would fail or misalign).

The metrics need the whole test set as gallery: :class:`RetrievalMetrics` collects embeddings over
an epoch and builds the full similarity matrix in ``compute``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from avpretrain.metrics._arrays import state_numpy, state_rows, to_numpy


def retrieval_ranks(sim: Any) -> np.ndarray:
    """0-based rank entries of the diagonal, one per tied column (CLIP4Clip's ``ind``).

    Args:
        sim: [Q, Q] similarity, query rows against gallery columns, truth on the diagonal.

    Returns:
        [M] int ranks, M >= Q (M > Q only when true scores tie with other columns).
    """
    x = to_numpy(sim, "sim", 2)
    if x.shape[0] != x.shape[1] or x.shape[0] == 0:
        raise ValueError(f"sim: expected a non-empty square [Q, Q] matrix, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("sim: contains NaN or infinity")
    sx = np.sort(-x, axis=1)
    d = np.diag(-x)[:, np.newaxis]
    return np.where(sx - d == 0)[1]


def retrieval_metrics(sim: Any) -> dict[str, float]:
    """R@1, R@5, R@10 (percent), median and mean rank, exactly as CLIP4Clip ``compute_metrics``.

    Args:
        sim: [Q, Q] similarity, query rows against gallery columns, truth on the diagonal.
            For the other direction pass ``sim.T``.

    Returns:
        ``{"R1", "R5", "R10", "MedianR", "MeanR"}``.
    """
    ind = retrieval_ranks(sim)
    return {
        "R1": float(np.sum(ind == 0)) * 100 / len(ind),
        "R5": float(np.sum(ind < 5)) * 100 / len(ind),
        "R10": float(np.sum(ind < 10)) * 100 / len(ind),
        "MedianR": float(np.median(ind) + 1),
        "MeanR": float(np.mean(ind) + 1),
    }


def cosine_similarity_matrix(query: Any, gallery: Any) -> np.ndarray:
    """[Q, G] cosine similarities of L2-normalised embeddings, as CAV-MAE ``get_sim_mat``.

    Args:
        query: [Q, D] embeddings.
        gallery: [G, D] embeddings.
    """
    q = torch.nn.functional.normalize(torch.as_tensor(to_numpy(query, "query", 2)).float(), dim=1)
    g = torch.nn.functional.normalize(
        torch.as_tensor(to_numpy(gallery, "gallery", 2)).float(), dim=1
    )
    return (q @ g.T).numpy()


class RetrievalMetrics(Metric):
    """Collects paired embeddings over an epoch and ranks against the whole set in ``compute``.

    Row ``i`` of every batch is one pair (clip ``i``'s query and gallery embeddings). The
    embeddings are ``cat`` states, so under DDP ``compute`` ranks every rank's clips against
    each other (a per-rank gallery would make retrieval easier).

    Args:
        forward: name of the query -> gallery direction in the result keys (e.g. ``a2v``).
        backward: name of the gallery -> query direction (e.g. ``v2a``).
        **kwargs: ``torchmetrics.Metric`` options (e.g. ``sync_on_compute``).
    """

    full_state_update = False
    query: list[Tensor]
    gallery: list[Tensor]

    def __init__(self, forward: str = "a2v", backward: str = "v2a", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directions = (forward, backward)
        self.add_state("query", default=[], dist_reduce_fx="cat")
        self.add_state("gallery", default=[], dist_reduce_fx="cat")

    def update(self, query: Any, gallery: Any) -> None:
        """Add a batch of pairs.

        Args:
            query: [B, D] embeddings of the first modality.
            gallery: [B, D'] embeddings of the second (D' = D for a cosine similarity).
        """
        q = torch.as_tensor(to_numpy(query, "query", 2), dtype=torch.float32)
        g = torch.as_tensor(to_numpy(gallery, "gallery", 2), dtype=torch.float32)
        if q.shape[0] != g.shape[0]:
            raise ValueError(f"query has {q.shape[0]} rows, gallery {g.shape[0]}: not paired")
        self.query.append(q.to(self.device))
        self.gallery.append(g.to(self.device))

    def compute(self) -> dict[str, float]:
        """Both directions over all pairs, keys like ``"a2v_R1"``, and ``gallery_size``."""
        if not state_rows(self.query):
            raise ValueError("RetrievalMetrics.compute: no update since reset")
        sim = cosine_similarity_matrix(state_numpy(self.query), state_numpy(self.gallery))
        out: dict[str, float] = {}
        for name, matrix in zip(self.directions, (sim, sim.T), strict=True):
            out.update({f"{name}_{k}": v for k, v in retrieval_metrics(matrix).items()})
        return {**out, "gallery_size": float(sim.shape[0])}
