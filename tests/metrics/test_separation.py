"""Sound-of-Pixels BSS metrics: perfect, swapped, silent and hand-computed SDR cases."""

import logging
import math

import numpy as np
import pytest
import torch

from avpretrain.metrics.separation import SeparationMetrics, bss_metrics

T = 2048
FILTER_TAPS = 512  # mir_eval's BSS Eval v3 distortion filter length


def sources(seed: int = 0, n: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, T))


def orthogonal_noise(refs: np.ndarray, seed: int) -> np.ndarray:
    """[T] noise orthogonal to every reference delayed by 0..511 samples (truncated to T).

    mir_eval projects an estimate on exactly that span, so for ``estimate = s_j + noise`` the
    filtered target is ``s_j``, interference is 0 and the noise is all artifact.
    """
    delayed = [np.r_[np.zeros(k), r[: T - k]] for r in refs for k in range(FILTER_TAPS)]
    span = np.stack(delayed, axis=1)  # [T, S * 512]
    x = np.random.default_rng(seed).standard_normal(T)
    return x - span @ np.linalg.lstsq(span, x, rcond=None)[0]


def test_perfect_separation_scores_very_high():
    refs = sources()
    out = bss_metrics(refs, refs.copy())
    assert out["sdr"] > 60 and out["sir"] > 60 and out["sar"] > 60


def test_swapped_separation_has_negative_sir():
    refs = sources()
    out = bss_metrics(refs, refs[::-1].copy())  # no permutation search, as Sound of Pixels
    assert out["sir"] < 0 and out["sdr"] < 0


def test_sdr_of_reference_plus_orthogonal_noise_matches_energy_ratio():
    refs = sources()
    target_db = np.array([12.0, 20.0])
    ests = []
    for j, ref in enumerate(refs):
        noise = orthogonal_noise(refs, seed=10 + j)
        # scale so that 10 log10(|s|^2 / |e|^2) is exactly target_db[j]
        noise *= math.sqrt(np.sum(ref**2) / np.sum(noise**2) / 10 ** (target_db[j] / 10))
        ests.append(ref + noise)
    out = bss_metrics(refs, np.stack(ests))
    # exact in theory (mir_eval matched it to the last bit here); 1e-4 dB leaves room for other
    # BLAS / FFT builds while still failing on any wrong decomposition or filter length
    assert out["sdr"] == pytest.approx(target_db.mean(), abs=1e-4)
    assert out["sar"] == pytest.approx(target_db.mean(), abs=1e-4)
    assert out["sir"] > 100  # interference is numerically zero


def test_silence_threshold_skips_and_counts():
    refs = sources()
    quiet = refs.copy()
    quiet[1] = 1e-5 / T / 2  # sum |x| = 5e-6 <= 1e-5
    assert bss_metrics(quiet, refs) is None
    assert bss_metrics(refs, quiet) is None  # a silent estimate skips too
    metric = SeparationMetrics()
    metric.update(torch.tensor(np.stack([refs, quiet])), np.stack([refs, refs]))
    out = metric.compute()
    assert out["count"] == 1 and out["skipped"] == 1
    assert out["sdr"] > 60


def test_references_cut_to_estimate_length_and_mixture_baseline():
    refs = sources(1)
    ests = refs[:, : T - 100] + 0.3 * sources(2)[:, : T - 100]
    longer = bss_metrics(np.c_[refs, sources(3)[:, :50]], ests, mixture=refs.sum(0))
    exact = bss_metrics(refs[:, : T - 100], ests, mixture=refs.sum(0)[: T - 100])
    assert longer == pytest.approx(exact)
    assert exact["sdr_mix"] < exact["sdr"]
    with pytest.raises(ValueError, match="shorter"):
        bss_metrics(refs[:, :100], ests)


def test_accumulator_means_over_counted_samples(caplog):
    refs = np.stack([sources(4), sources(5)])
    ests = refs + 0.5 * np.stack([sources(6), sources(7)])
    metric = SeparationMetrics()
    metric.update(refs[:1], ests[:1])
    metric.update(refs[1:], ests[1:])
    per_sample = [bss_metrics(r, e) for r, e in zip(refs, ests, strict=True)]
    out = metric.compute()
    assert "sdr_mix" not in out
    for key in ("sdr", "sir", "sar"):
        assert out[key] == pytest.approx(np.mean([s[key] for s in per_sample]))
    metric.reset()
    metric.update(np.zeros((1, 2, T)), ests[:1])
    with caplog.at_level(logging.WARNING):
        out = metric.compute()
    assert math.isnan(out["sdr"]) and out["skipped"] == 1 and "skipped" in caplog.text
