"""Byte tokenizer (ids by hand, round trip, padding, truncation, non-ASCII) and text encoder."""

from __future__ import annotations

import pytest
import torch

from avpretrain.heads.text import BOS, EOS, PAD, ByteTokenizer, TextEncoder


def test_ids_by_hand_and_padding():
    ids, mask = ByteTokenizer(max_length=6)(["hi", ""])
    # 'h' = 104, 'i' = 105, shifted by the 3 special ids
    assert ids.tolist() == [[BOS, 107, 108, EOS, PAD, PAD], [BOS, EOS, PAD, PAD, PAD, PAD]]
    assert mask.tolist() == [[True] * 4 + [False] * 2, [True] * 2 + [False] * 4]
    assert ids.dtype == torch.long and mask.dtype == torch.bool


@pytest.mark.parametrize("text", ["A red circle bell sounds.", "Café 東京 🎵 naïve", "  "])
def test_round_trip(text):
    tok = ByteTokenizer(max_length=64)
    ids, _ = tok([text])
    assert tok.decode(ids[0]) == text
    assert len(tok.encode(text)) == len(text.encode("utf-8")) + 2


def test_truncation_keeps_a_prefix_and_whole_characters():
    tok = ByteTokenizer(max_length=8)  # room for 6 bytes
    assert tok.decode(tok.encode("abcdefghij")) == "abcdef"
    assert tok.encode("abcdefghij")[-1] == EOS
    # 'é' is 2 bytes, '東' 3: "aé東" = 6 bytes fits; "aé東x" is cut after 東
    assert tok.decode(tok.encode("aé東xyz")) == "aé東"
    # "ab東" = 5 bytes, then '東' again (bytes 6-8) would be split: it is dropped whole
    ids = tok.encode("ab東東")
    assert tok.decode(ids) == "ab東" and len(ids) == 2 + 5
    assert all(len(tok.encode(t)) <= 8 for t in ["🎵" * 5, "x" * 100])


def test_tokenizer_is_deterministic_and_rejects_bad_input():
    tok = ByteTokenizer(max_length=16)
    assert torch.equal(tok(["same text"])[0], tok(["same text"])[0])
    with pytest.raises(TypeError):
        tok.encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_length"):
        ByteTokenizer(max_length=2)


def _encoder() -> TextEncoder:
    torch.manual_seed(0)
    return TextEncoder(width=32, depth=2, num_heads=4, max_length=24).eval()


def test_encoder_output_shape():
    enc = _encoder()
    out = enc.encode_text(["a bell", "a drum sounds at the top left", "ü"])
    assert out.shape == (3, 32) and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])


def test_padding_does_not_change_the_embedding():
    enc = _encoder()
    ids, mask = enc.tokenizer(["a bell"])  # 8 real ids, 16 pads
    with torch.no_grad():
        full = enc(ids, mask)
        short = enc(ids[:, :8], mask[:, :8])  # no padding at all
        garbage = ids.clone()
        garbage[~mask] = 200  # whatever sits under the mask is ignored
        masked = enc(garbage, mask)
        alone = enc.encode_text(["a bell"])
        batched = enc.encode_text(["a bell", "a much longer caption than the first"])[:1]
    torch.testing.assert_close(full, short, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(full, masked, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=1e-5)


def test_encoder_rejects_too_long_input():
    with pytest.raises(ValueError, match="max_length"):
        _encoder()(torch.ones(1, 30, dtype=torch.long))
