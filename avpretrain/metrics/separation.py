"""Source separation metrics (SDR, SIR, SAR) as Sound of Pixels computes them.

Follows hangzhaomit/Sound-of-Pixels ``main.py:calc_metrics``, which calls
``mir_eval.separation.bss_eval_sources`` (BSS Eval v3: 512-tap time-invariant distortion filters).
Reproduced as is:

- References are cut to the estimates' length (``audios[n][j, 0:L]`` with L the length of the
  iSTFT output) before scoring.
- A sample counts only if *every* reference and *every* estimate has ``sum |x| > 1e-5``; other
  samples are skipped silently there (here counted and reported as ``skipped``).
- ``compute_permutation=False``: estimate n is scored against reference n, never re-matched, so a
  swapped separation scores badly (negative SIR).
- Per sample: SDR, SIR, SAR averaged over the sources; the mixture baseline ``SDR_mixture`` is the
  same call with the mixture as every source's estimate (``sdr_mix`` here, when a mixture is
  given).
- Averaging over samples: the official ``evaluate`` takes the mean of per-*batch* means (a batch
  whose samples were all skipped counts as 0). :class:`SeparationMetrics` averages over counted
  samples instead; the two agree when batches are equal in size and nothing is skipped.

mir_eval 0.8 marks ``bss_eval_sources`` as deprecated (FutureWarning, removal in 0.9); the
warning is silenced here because this exact function is what the benchmark reports. Values are
in dB; a perfect estimate gives about +300 dB (or ``inf``).
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
import torch
from mir_eval.separation import bss_eval_sources
from torch import Tensor
from torchmetrics import Metric

from avpretrain.metrics._arrays import state_numpy, state_rows, to_numpy

log = logging.getLogger(__name__)

SILENCE_THRESHOLD = 1e-5
_KEYS = ("sdr", "sir", "sar", "sdr_mix")  # the columns of SeparationMetrics' score rows


def bss_metrics(
    references: Any, estimates: Any, mixture: Any | None = None
) -> dict[str, float] | None:
    """SDR, SIR, SAR of one sample, averaged over its sources, or None if it is skipped.

    Args:
        references: [S, T'] true source waveforms, T' >= T (cut to T as the official code does).
        estimates: [S, T] estimated waveforms, estimate n for reference n.
        mixture: optional [T''] mixture waveform, T'' >= T, for the ``sdr_mix`` baseline.

    Returns:
        ``{"sdr", "sir", "sar"}`` (plus ``"sdr_mix"`` with a mixture) in dB, or None when some
        reference or estimate has ``sum |x| <= 1e-5`` (the official code skips the sample).
    """
    ests = to_numpy(estimates, "estimates", 2).astype(np.float64)
    refs = to_numpy(references, "references", 2).astype(np.float64)
    if refs.shape[0] != ests.shape[0]:
        raise ValueError(f"{refs.shape[0]} references but {ests.shape[0]} estimates")
    length = ests.shape[1]
    if refs.shape[1] < length:
        raise ValueError(f"references {refs.shape} shorter than estimates {ests.shape}")
    refs = refs[:, :length]
    sums = np.abs(np.concatenate([refs, ests])).sum(axis=1)
    if not (sums > SILENCE_THRESHOLD).all():
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"mir_eval\.separation", FutureWarning)
        sdr, sir, sar, _ = bss_eval_sources(refs, ests, compute_permutation=False)
        out = {"sdr": float(sdr.mean()), "sir": float(sir.mean()), "sar": float(sar.mean())}
        if mixture is not None:
            mix = to_numpy(mixture, "mixture", 1).astype(np.float64)
            if mix.shape[0] < length:
                raise ValueError(f"mixture {mix.shape} shorter than estimates {ests.shape}")
            mixes = np.repeat(mix[None, :length], len(refs), axis=0)
            out["sdr_mix"] = float(
                bss_eval_sources(refs, mixes, compute_permutation=False)[0].mean()
            )
    return out


class SeparationMetrics(Metric):
    """Mean SDR / SIR / SAR over the counted samples since ``reset``, and how many were skipped.

    BSS Eval runs in ``update`` (about a second per sample on one CPU core); each counted
    sample's scores are a row of a ``cat`` state (``sdr_mix`` NaN without a mixture) and the
    skipped samples a ``sum`` state, so under DDP ``compute`` averages over every rank's samples.

    Args:
        **kwargs: ``torchmetrics.Metric`` options (e.g. ``sync_on_compute``).
    """

    full_state_update = False
    scores: list[Tensor]
    skipped: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("scores", default=[], dist_reduce_fx="cat")  # [N, 4]: _KEYS
        self.add_state(
            "skipped", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )

    @property
    def seen(self) -> int:
        """Samples given to ``update`` since ``reset`` on this process, counted or skipped."""
        return state_rows(self.scores) + int(self.skipped)

    def update(self, references: Any, estimates: Any, mixtures: Any | None = None) -> None:
        """Score a batch of samples.

        Args:
            references: [B, S, T'] true sources (T' >= T).
            estimates: [B, S, T] estimated sources.
            mixtures: optional [B, T''] mixtures (T'' >= T) for ``sdr_mix``.
        """
        refs = to_numpy(references, "references", 3)
        ests = to_numpy(estimates, "estimates", 3)
        mixes = None if mixtures is None else to_numpy(mixtures, "mixtures", 2)
        if len(refs) != len(ests) or (mixes is not None and len(mixes) != len(ests)):
            raise ValueError("references, estimates and mixtures differ in batch size")
        rows, skipped = [], 0
        for i in range(len(ests)):
            score = bss_metrics(refs[i], ests[i], None if mixes is None else mixes[i])
            if score is None:
                skipped += 1
            else:
                rows.append([score.get(key, float("nan")) for key in _KEYS])
        scores = torch.tensor(rows, dtype=torch.float64).reshape(-1, len(_KEYS))
        self.scores.append(scores.to(self.device))
        self.skipped += skipped

    def compute(self) -> dict[str, float]:
        """Means over counted samples, plus ``count`` and ``skipped``.

        ``sdr_mix`` averages the samples given a mixture and is absent if none was; the means are
        NaN (and a warning is logged) when every sample was skipped.
        """
        skipped = float(self.skipped)
        if not state_rows(self.scores) and not skipped:
            raise ValueError("SeparationMetrics.compute: no update since reset")
        scores = state_numpy(self.scores)
        if not len(scores):
            log.warning("SeparationMetrics: all %d samples skipped as silent", skipped)
        out = {}
        for key, column in zip(_KEYS, scores.T.tolist(), strict=True):
            values = [v for v in column if not math.isnan(v)] if key == "sdr_mix" else column
            if values or key != "sdr_mix":
                out[key] = float(np.mean(values)) if values else float("nan")
        return {**out, "count": float(len(scores)), "skipped": skipped}
