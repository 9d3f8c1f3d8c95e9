"""Greedy and beam-search decoding of a left-to-right token model.

Both take ``next_logits(prefix, rows)``: the model's logits of the next token after each prefix
(``prefix`` [N, L] long, starting with ``bos``; ``rows`` [N] long, the example each prefix
belongs to, so the model can pick its memory), returning [N, V]. ``pad`` and ``bos`` are never
generated.

Beam search follows fairseq's bookkeeping: each step takes the best ``2 k`` of all (hypothesis,
token) extensions; an ``eos`` among the best ``k`` finishes that hypothesis, the best ``k``
extensions that do not end in ``eos`` stay live, and an example stops once it has ``k``
finished hypotheses (or at ``max_length``, when its live ones are finished as they are). The
finished hypotheses are ranked by their summed log-probability plus ``length_penalty`` times
their length in tokens (``eos`` included): the AVSD baseline's word-insertion bonus
(dialogtekgeek/AudioVisualSceneAwareDialog ``beam_search``: ``lp[eos] + penalty * (len(out) +
1)``; 0 ranks by log-probability alone). With ``k = 1`` this is greedy decoding exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

NextLogits = Callable[[Tensor, Tensor], Tensor]


def _log_probs(logits: Tensor, banned: tuple[int, ...]) -> Tensor:
    logp = logits.float().log_softmax(dim=-1)
    logp[:, list(banned)] = float("-inf")
    return logp


@torch.no_grad()
def greedy_decode(
    next_logits: NextLogits,
    batch_size: int,
    bos: int,
    eos: int,
    pad: int,
    max_length: int,
    device: torch.device | str = "cpu",
) -> list[list[int]]:
    """The most likely token at every step, until ``eos`` or ``max_length`` tokens.

    Returns:
        B lists of generated ids (``bos`` and ``eos`` left out).
    """
    prefix = torch.full((batch_size, 1), bos, dtype=torch.long, device=device)
    rows = torch.arange(batch_size, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    for _ in range(max_length):
        logp = _log_probs(next_logits(prefix[~done], rows[~done]), (pad, bos))
        step = torch.full((batch_size,), pad, dtype=torch.long, device=device)
        step[~done] = logp.argmax(dim=-1)
        done |= step == eos
        prefix = torch.cat([prefix, step[:, None]], dim=1)
        if bool(done.all()):
            break
    return [[t for t in row[1:].tolist() if t not in (pad, eos)] for row in prefix]


@torch.no_grad()
def beam_search(
    next_logits: NextLogits,
    batch_size: int,
    bos: int,
    eos: int,
    pad: int,
    max_length: int,
    beam_size: int = 5,
    length_penalty: float = 0.0,
    device: torch.device | str = "cpu",
) -> list[list[int]]:
    """The best finished hypothesis of a width-``beam_size`` beam per example (module docstring).

    Returns:
        B lists of generated ids (``bos`` and ``eos`` left out).
    """
    if beam_size < 1 or max_length < 1:
        raise ValueError(f"need beam_size, max_length >= 1: {beam_size}, {max_length}")
    k, b = beam_size, batch_size
    prefix = torch.full((b * k, 1), bos, dtype=torch.long, device=device)
    rows = torch.arange(b, device=device).repeat_interleave(k)
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis per example at the start
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    done = torch.zeros(b, dtype=torch.bool, device=device)
    for step in range(max_length):
        live = ~done.repeat_interleave(k)
        step_logp = _log_probs(next_logits(prefix[live], rows[live]), (pad, bos))
        logp = step_logp.new_full((b * k, step_logp.shape[1]), float("-inf"))
        logp[live] = step_logp
        vocab = logp.shape[1]
        cand = (scores.view(b * k, 1) + logp).view(b, k * vocab)
        top_scores, top_index = cand.topk(min(2 * k, k * vocab), dim=1)
        beam, token = top_index // vocab, top_index % vocab
        length = step + 1  # generated tokens, eos included
        for i, j in (token[:, :k] == eos).nonzero().tolist():
            if done[i] or not torch.isfinite(top_scores[i, j]):
                continue
            ids = prefix[i * k + beam[i, j], 1:].tolist()
            finished[i].append((float(top_scores[i, j]) + length_penalty * length, ids))
        done |= torch.tensor([len(f) >= k for f in finished], device=device)
        # the best k extensions that do not end in eos stay live
        keep = (token != eos).float().cumsum(dim=1).le(k) & (token != eos)
        order = keep.float().argsort(dim=1, descending=True, stable=True)[:, :k]
        src = beam.gather(1, order) + torch.arange(b, device=device)[:, None] * k
        scores = top_scores.gather(1, order)
        scores[~keep.gather(1, order)] = float("-inf")
        prefix = torch.cat([prefix[src.flatten()], token.gather(1, order).view(-1, 1)], dim=1)
        if bool(done.all()):
            break
    for i in range(b):  # examples still searching at max_length: their live hypotheses finish
        if len(finished[i]) < k:
            for j in range(k):
                if torch.isfinite(scores[i, j]):
                    ids = prefix[i * k + j, 1:].tolist()
                    bonus = length_penalty * len(ids)
                    finished[i].append((float(scores[i, j]) + bonus, ids))
    return [[t for t in max(f, key=lambda h: h[0])[1] if t != eos] for f in finished]
