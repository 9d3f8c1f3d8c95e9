"""Alignment scores of a clip (the ACAV-1M paper's curation criteria), each in [0, 1].

Every score is a normalised cosine similarity ``(cos + 1) / 2`` between embeddings of two
modalities from one embedder (one shared space):

- ``text_audio``: caption vs the whole clip's audio (language alignment, CLAP in the paper);
- ``text_visual``: caption vs the clip's frames, the mean of the normalised frame embeddings
  (language alignment, CLIP in the paper);
- ``text_av``: caption vs the clip's fused audio and middle frame (language alignment, the own
  model's retrieval head, which learns captions against exactly that fused embedding);
- ``audio_visual``: the clip's audio vs its frames (instance alignment);
- ``temporal``: synchrony. Each stored frame at time ``t`` is paired with the one-second audio
  segment centred on ``t`` (moved inside the clip at its edges), looped to the clip's length:
  an encoder trained on whole clips sees an input of that length, where a zero-padded second
  would be mostly silence to it (the own model's segment embeddings then hardly differ) and
  a loop keeps the segment's sound throughout (CLAP pads short audio by repeating it too).
  With ``S`` pairs, ``M[i, j]`` is the similarity of frame ``i`` and audio segment ``j``; the
  aligned similarity is the mean of the diagonal, the shifted one the mean off the diagonal (the same audio moved in time by every
  other offset). ``temporal = (1 + aligned - shifted) / 2``: 0.5 when timing does not matter,
  above it when each frame matches its own moment's sound best, below it for a clip whose audio
  is out of step with its frames. Undefined (None) for a clip with fewer than two frames.

A score is None where it cannot be computed (no caption, no embedder for that pair).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avpretrain.curation.embedders import Embedder, supports
from avpretrain.data.schema import SCORE_KEYS

log = logging.getLogger(__name__)
SEGMENT_SECONDS = 1.0
# the schema's scores plus the own model's caption score (None wherever it is not computed)
SCORE_NAMES = (*SCORE_KEYS, "text_av")


@dataclass
class ClipInput:
    """One decoded clip, as the scorer needs it.

    Attributes:
        key: sample key.
        waveform: [samples] float32 mono.
        sample_rate: audio rate, Hz.
        frames: [F, 3, H, W] uint8, in temporal order.
        frame_times: F times of the frames from the clip start, seconds.
        caption: the caption, or None.
    """

    key: str
    waveform: np.ndarray
    sample_rate: int
    frames: Tensor
    frame_times: list[float]
    caption: str | None


@dataclass
class ScoreModels:
    """Which embedder scores which pair of modalities; None leaves that score unset.

    Attributes:
        audio_visual: embeds audio and frames (instance and temporal alignment).
        text_audio: embeds text and audio (e.g. CLAP).
        text_visual: embeds text and frames (e.g. CLIP).
        text_av: embeds text and whole clips (``embed_audio_visual``: the own model's
            retrieval head, :class:`~avpretrain.curation.embedders.AVMAEEmbedder`).
    """

    audio_visual: Embedder | None = None
    text_audio: Embedder | None = None
    text_visual: Embedder | None = None
    text_av: Embedder | None = None


def normalized_cosine(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise ``(cos(a_i, b_i) + 1) / 2``: a: [B, D], b: [B, D] -> [B] in [0, 1]."""
    return (F.cosine_similarity(a.float(), b.float(), dim=-1, eps=1e-8) + 1.0) / 2.0


def pairwise_normalized_cosine(a: Tensor, b: Tensor) -> Tensor:
    """All pairs: a: [N, D], b: [M, D] -> [N, M], ``(cos(a_i, b_j) + 1) / 2``."""
    return (F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T + 1.0) / 2.0


def temporal_score(similarity: Tensor) -> float | None:
    """``(1 + mean(diag) - mean(off-diagonal)) / 2`` of a square [S, S] similarity; None if S < 2."""
    s = similarity.shape[0]
    if s < 2:
        return None
    diag = similarity.diagonal().mean()
    off = (similarity.sum() - similarity.diagonal().sum()) / (s * s - s)
    return float((1.0 + diag - off) / 2.0)


def audio_segments(
    waveform: np.ndarray, sample_rate: int, times: Sequence[float], seconds: float = SEGMENT_SECONDS
) -> np.ndarray:
    """Audio windows of ``seconds`` centred on ``times``, shifted inside the clip at its edges.

    Returns:
        [len(times), round(seconds * sample_rate)] float32; a clip shorter than one window is
        zero-padded at the end.
    """
    width = round(seconds * sample_rate)
    wave = np.asarray(waveform, dtype=np.float32)
    if wave.shape[0] < width:
        wave = np.pad(wave, (0, width - wave.shape[0]))
    last = wave.shape[0] - width
    starts = [min(max(round(t * sample_rate) - width // 2, 0), last) for t in times]
    return np.stack([wave[s : s + width] for s in starts])


def looped(segments: np.ndarray, length: int) -> np.ndarray:
    """Rows of ``segments`` [S, W] repeated and cut to ``length`` samples (unchanged if W >= it).

    Returns:
        [S, max(W, length)] float32.
    """
    width = segments.shape[1]
    if length <= width:
        return segments
    reps = -(-length // width)
    return np.tile(segments, (1, reps))[:, :length]


def _grouped(items: list[Any], key: Callable[[Any], Hashable], embed: Callable) -> list[Tensor]:
    """Embed ``items`` in batches of equal ``key`` (shape), returning rows in input order."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        groups[key(item)].append(i)
    out: list[Tensor | None] = [None] * len(items)
    for indices in groups.values():
        rows = embed([items[i] for i in indices])
        for i, row in zip(indices, rows, strict=True):
            out[i] = row
    return out  # type: ignore[return-value]


def _embed_audio(embedder: Embedder, waves: list[np.ndarray], rates: list[int]) -> list[Tensor]:
    pairs = list(zip(waves, rates, strict=True))
    return _grouped(
        pairs,
        lambda p: (p[0].shape[0], p[1]),
        lambda batch: embedder.embed_audio([w for w, _ in batch], batch[0][1]),
    )


def _embed_frames(embedder: Embedder, clips: list[ClipInput]) -> list[Tensor]:
    """Per clip, its frames' embeddings [F, D] (all frames of all clips in shared batches)."""
    flat = [f for clip in clips for f in clip.frames]
    rows = _grouped(flat, lambda f: tuple(f.shape), lambda b: embedder.embed_frames(torch.stack(b)))
    out, start = [], 0
    for clip in clips:
        out.append(torch.stack(rows[start : start + len(clip.frames)]))
        start += len(clip.frames)
    return out


def _frame_mean(frame_embeddings: Tensor) -> Tensor:
    """Mean of the L2-normalised frame embeddings [F, D] -> [D]."""
    return F.normalize(frame_embeddings.float(), dim=-1).mean(0)


def _instance_and_temporal(embedder: Embedder, clips: list[ClipInput], scores: list[dict]) -> None:
    frames = _embed_frames(embedder, clips)
    audio = _embed_audio(embedder, [c.waveform for c in clips], [c.sample_rate for c in clips])
    for f, a, s in zip(frames, audio, scores, strict=True):
        s["audio_visual"] = float(normalized_cosine(a[None], _frame_mean(f)[None])[0])
    segments = [
        looped(audio_segments(c.waveform, c.sample_rate, c.frame_times), len(c.waveform))
        for c in clips
    ]
    flat_waves = [w for seg in segments for w in seg]
    flat_rates = [c.sample_rate for c, seg in zip(clips, segments, strict=True) for _ in seg]
    seg_emb = _embed_audio(embedder, flat_waves, flat_rates)
    start = 0
    for f, seg, s in zip(frames, segments, scores, strict=True):
        a = torch.stack(seg_emb[start : start + len(seg)])
        start += len(seg)
        s["temporal"] = temporal_score(pairwise_normalized_cosine(f, a))


def _language(
    embedder: Embedder, clips: list[ClipInput], scores: list[dict], key: str, modality: str
) -> None:
    captioned = [i for i, c in enumerate(clips) if c.caption]
    if not captioned:
        return
    text = embedder.embed_text([cast(str, clips[i].caption) for i in captioned])  # captioned
    subset = [clips[i] for i in captioned]
    if modality == "audio":
        rows = _embed_audio(embedder, [c.waveform for c in subset], [c.sample_rate for c in subset])
        other = torch.stack(rows)
    else:
        other = torch.stack([_frame_mean(f) for f in _embed_frames(embedder, subset)])
    sims = normalized_cosine(text, other)
    for i, value in zip(captioned, sims.tolist(), strict=True):
        scores[i][key] = value


def _text_av(embedder: Any, clips: list[ClipInput], scores: list[dict]) -> None:
    """Caption vs the fused embedding of the clip's audio and middle frame."""
    captioned = [i for i, c in enumerate(clips) if c.caption]
    if not captioned:
        return
    text = embedder.embed_text([clips[i].caption for i in captioned])
    items = [
        (clips[i].waveform, clips[i].sample_rate, clips[i].frames[len(clips[i].frames) // 2])
        for i in captioned
    ]
    rows = _grouped(
        items,
        lambda it: (it[0].shape[0], it[1], tuple(it[2].shape)),
        lambda batch: embedder.embed_audio_visual(
            [w for w, _, _ in batch], batch[0][1], torch.stack([f for _, _, f in batch])
        ),
    )
    sims = normalized_cosine(text, torch.stack(rows))
    for i, value in zip(captioned, sims.tolist(), strict=True):
        scores[i]["text_av"] = value


def score_clips(
    clips: list[ClipInput], models: ScoreModels, skipped: set[str] | None = None
) -> list[dict[str, float | None]]:
    """Score a batch of clips under ``torch.no_grad``.

    Args:
        clips: the batch.
        models: the embedder of each pair of modalities.
        skipped: score names already reported as unavailable; a pair whose embedder raises
            NotImplementedError is added here and logged once.

    Returns:
        per clip ``{text_audio, text_visual, audio_visual, temporal}`` (float or None), plus
        ``text_av`` when ``models.text_av`` is set.
    """
    skipped = set() if skipped is None else skipped
    # text_av is the own model's optional extra: present only when asked for, so records
    # keep the schema's four scores otherwise
    names = SCORE_NAMES if models.text_av is not None else SCORE_KEYS
    scores: list[dict[str, float | None]] = [dict.fromkeys(names) for _ in clips]
    jobs = [
        ("audio_visual", models.audio_visual, ("audio", "frames"), _instance_and_temporal),
        ("text_audio", models.text_audio, ("text", "audio"), None),
        ("text_visual", models.text_visual, ("text", "frames"), None),
    ]
    if models.text_av is not None:
        jobs.append(("text_av", models.text_av, ("text", "audio_visual"), _text_av))
    with torch.no_grad():
        for name, embedder, needs, run in jobs:
            if name in skipped:
                continue
            if not supports(embedder, *needs):
                _skip(name, skipped, "no embedder for it")
                continue
            try:
                if run is not None:
                    run(embedder, clips, scores)
                else:
                    _language(embedder, clips, scores, name, needs[1])
            except NotImplementedError as err:
                _skip(name, skipped, f"{embedder.name}: {err}")
    return scores


def _skip(name: str, skipped: set[str], why: str) -> None:
    skipped.add(name)
    extra = " (and temporal)" if name == "audio_visual" else ""
    log.warning("curation: %s%s scores skipped: %s", name, extra, why)
