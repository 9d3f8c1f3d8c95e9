"""Dialog head: memory and logit shapes, causal masking, greedy and beam-search decoding."""

from __future__ import annotations

import math

import pytest
import torch

from avpretrain.heads.decoding import beam_search, greedy_decode
from avpretrain.heads.dialog import DialogHead
from avpretrain.heads.text import BOS, EOS, PAD, VOCAB_SIZE, TextEncoder


def _head(**kwargs) -> DialogHead:
    torch.manual_seed(0)
    text = TextEncoder(width=16, depth=1, num_heads=2, max_length=40)
    head = DialogHead(dim=16, depth=2, num_heads=2, text_encoder=text, **kwargs)
    head.bind(audio_dim=12, video_dim=10, num_segments=3)
    return head.eval()


def _memory(head: DialogHead):
    audio, video = torch.randn(2, 3, 12), torch.randn(2, 3, 5, 10)
    texts = {
        "caption": ["a bell rings.", "a bell rings.", "a drum."],
        "history": ["", "is it loud? yes.", ""],
        "question": ["what rings?", "is it loud?", "where?"],
    }
    return head.memory(audio, video, torch.tensor([0, 0, 1]), texts), texts


def test_memory_and_logit_shapes():
    head = _head(max_answer_length=12)
    (memory, mask), texts = _memory(head)
    # the question's summary, 3 segments x (1 audio + 5 patch tokens), then each text's ids up
    # to its longest
    text_len = sum(max(len(t.encode()) + 2 for t in texts[r]) for r in texts)
    assert memory.shape == (3, 1 + 3 * 6 + text_len, 16) and mask.shape == memory.shape[:2]
    assert mask[:, :19].all() and not mask[0, 19:].all()  # text padding is masked
    # the summary is the mean of the question's token states (the last text's)
    question_len = max(len(t.encode()) + 2 for t in texts["question"])
    states, qmask = memory[:, -question_len:], mask[:, -question_len:]
    expected = (states * qmask[..., None]).sum(1) / qmask.sum(1, keepdim=True)
    torch.testing.assert_close(memory[:, 0], expected)
    inputs, labels = head.targets(["yes.", "a bell"])
    assert inputs.shape == labels.shape == (2, 7)  # bos + 6 bytes / 6 bytes + eos
    assert inputs[0, 0] == BOS and labels[0, 4] == EOS and labels[0, 5] == PAD
    logits = head(memory[:2], mask[:2], inputs)
    assert logits.shape == (2, 7, VOCAB_SIZE)
    with pytest.raises(ValueError, match="built for widths"):
        head.bind(audio_dim=13, video_dim=10, num_segments=3)


def test_a_future_token_never_changes_an_earlier_logit():
    head = _head(max_answer_length=12)
    (memory, mask), _ = _memory(head)
    prefix = torch.randint(3, VOCAB_SIZE, (3, 9))
    prefix[:, 0] = BOS
    base = head(memory, mask, prefix)
    for cut in (1, 4, 8):
        changed = prefix.clone()
        changed[:, cut:] = torch.randint(3, VOCAB_SIZE, (3, 9 - cut))
        out = head(memory, mask, changed)
        torch.testing.assert_close(out[:, :cut], base[:, :cut])
        assert not torch.allclose(out[:, cut:], base[:, cut:])  # the later ones do change


def test_beam_of_one_is_greedy_on_the_head():
    head = _head(max_answer_length=10)
    (memory, mask), _ = _memory(head)

    def next_logits(prefix, rows):
        return head(memory[rows], mask[rows], prefix)[:, -1]

    args = (next_logits, 3, BOS, EOS, PAD, 10)
    greedy = greedy_decode(*args)
    assert greedy == beam_search(*args, beam_size=1, length_penalty=0.0)
    assert greedy == beam_search(*args, beam_size=1, length_penalty=5.0)
    assert head.generate(memory, mask, beam_size=1) == [
        head.answer_tokenizer.decode(ids) for ids in greedy
    ]
    assert len(head.generate(memory, mask, beam_size=3, max_length=4)) == 3


def _toy(table: dict[tuple[int, ...], dict[int, float]]):
    """``next_logits`` of a toy model: probabilities by generated prefix (bos left out); a
    prefix missing from ``table`` ends (eos)."""

    def next_logits(prefix, rows):
        out = torch.full((prefix.shape[0], 6), float("-inf"))
        for n, row in enumerate(prefix[:, 1:].tolist()):
            for token, p in table.get(tuple(row), {EOS: 1.0}).items():
                out[n, token] = math.log(p)
        return out

    return next_logits


# tokens 3, 4, 5 and eos (2): greedy takes 3 then eos (0.6 x 0.4 = 0.24); 4 then eos is 0.36
TABLE = {
    (): {3: 0.6, 4: 0.4},
    (3,): {EOS: 0.4, 3: 0.35, 4: 0.25},
    (4,): {EOS: 0.9, 5: 0.1},
}


def test_beam_search_finds_what_greedy_misses_and_the_length_bonus_reranks():
    args = (_toy(TABLE), 1, BOS, EOS, PAD, 5)
    assert greedy_decode(*args) == [[3]]
    assert beam_search(*args, beam_size=1) == [[3]]
    # k = 2: the best two extensions of step 2 both end: 4 eos (0.36) and 3 eos (0.24)
    assert beam_search(*args, beam_size=2) == [[4]]
    assert beam_search(*args, beam_size=2, length_penalty=1.0) == [[4]]
    # k = 3 also finishes [3, 3] (0.21, 3 tokens with eos) against [4] (0.36, 2 tokens):
    # log 0.36 + 2 p > log 0.21 + 3 p exactly when p < log(0.36 / 0.21) = 0.539
    assert beam_search(*args, beam_size=3, length_penalty=0.5) == [[4]]
    assert beam_search(*args, beam_size=3, length_penalty=0.6) == [[3, 3]]


def test_hypotheses_at_max_length_are_returned_unfinished():
    never_ends = {(): {3: 1.0}, (3,): {3: 1.0}, (3, 3): {3: 1.0}}
    args = (_toy(never_ends), 2, BOS, EOS, PAD, 3)
    assert greedy_decode(*args) == [[3, 3, 3]] * 2
    assert beam_search(*args, beam_size=2) == [[3, 3, 3]] * 2
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(*args, beam_size=0)
