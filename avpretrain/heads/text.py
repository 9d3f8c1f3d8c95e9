"""A byte-level tokenizer and a small transformer text encoder, built here (no vocabulary file).

Captions are UTF-8 bytes, so any language and any symbol has an id without a downloaded vocabulary
(ByT5's choice): ids 0-2 are the special tokens, byte ``b`` is ``b + 3``. The encoder is trained
from scratch with the retrieval objective, so it only needs to tell the benchmark's captions apart.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

PAD, BOS, EOS = 0, 1, 2
NUM_SPECIAL = 3
VOCAB_SIZE = NUM_SPECIAL + 256


def _is_continuation(byte: int) -> bool:
    return byte & 0xC0 == 0x80  # 10xxxxxx: inside a multi-byte UTF-8 character


class ByteTokenizer:
    """UTF-8 bytes plus ``pad``, ``bos`` and ``eos``, padded or truncated to a fixed length.

    A sequence is ``[bos, bytes..., eos, pad...]`` of exactly ``max_length`` ids. Truncation keeps
    the first bytes and never splits a multi-byte character (it backs off to the character's
    start), so a truncated caption still decodes to a prefix of the text. Deterministic: no
    randomness, no normalisation beyond UTF-8 encoding.

    Args:
        max_length: ids per sequence, special tokens included (at least 3).
    """

    pad_id, bos_id, eos_id = PAD, BOS, EOS
    vocab_size = VOCAB_SIZE

    def __init__(self, max_length: int = 64) -> None:
        if max_length < 3:
            raise ValueError(f"max_length must be >= 3 (bos, eos and one byte), got {max_length}")
        self.max_length = max_length

    def encode(self, text: str) -> list[int]:
        """Ids of one text, ``[bos, bytes..., eos]`` (no padding), at most ``max_length``."""
        if not isinstance(text, str):
            raise TypeError(f"expected a str, got {type(text).__name__}")
        data = text.encode("utf-8")
        keep = self.max_length - 2
        if len(data) > keep:
            while keep > 0 and _is_continuation(data[keep]):
                keep -= 1
            data = data[:keep]
        return [BOS, *(b + NUM_SPECIAL for b in data), EOS]

    def decode(self, ids: list[int] | Tensor) -> str:
        """Text of one id sequence; special tokens are dropped."""
        values = ids.tolist() if isinstance(ids, Tensor) else ids
        data = bytes(i - NUM_SPECIAL for i in values if i >= NUM_SPECIAL)
        return data.decode("utf-8", errors="replace")

    def __call__(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Padded ids and their mask.

        Args:
            texts: B strings.

        Returns:
            ``ids`` [B, max_length] long (``pad`` after ``eos``) and ``mask`` [B, max_length]
            bool, True on real tokens (``bos``, bytes, ``eos``).
        """
        ids = torch.full((len(texts), self.max_length), PAD, dtype=torch.long)
        for row, text in enumerate(texts):
            seq = self.encode(text)
            ids[row, : len(seq)] = torch.tensor(seq)
        return ids, ids != PAD


class TextEncoder(nn.Module):
    """Pre-norm transformer over byte ids, pooled to one embedding per text.

    Padding is masked out of attention and out of the pooling (mean over real tokens), so the
    embedding of a text does not depend on how much padding follows it.

    Args:
        width: token width D.
        depth: transformer layers.
        num_heads: attention heads (must divide ``width``).
        max_length: ids per text (learned positions); also the tokenizer's length.
        mlp_ratio: MLP hidden width as a multiple of ``width``.
        dropout: dropout in the layers.
    """

    def __init__(
        self,
        width: int = 256,
        depth: int = 4,
        num_heads: int = 4,
        max_length: int = 64,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.width = width
        self.tokenizer = ByteTokenizer(max_length)
        self.token_embed = nn.Embedding(VOCAB_SIZE, width, padding_idx=PAD)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_length, width))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.token_embed.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(
            width,
            num_heads,
            int(width * mlp_ratio),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # nested tensors do not apply to pre-norm layers; asking for them only warns
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def token_states(self, ids: Tensor, mask: Tensor | None = None) -> Tensor:
        """Final (normed) token states of tokenised texts: [B, L, D].

        Args:
            ids: [B, L] byte ids, L <= ``max_length``.
            mask: [B, L] bool, True on real tokens; None derives it from ``ids != pad``.
        """
        if ids.shape[1] > self.pos_embed.shape[1]:
            raise ValueError(f"{ids.shape[1]} ids exceed max_length {self.pos_embed.shape[1]}")
        if mask is None:
            mask = ids != PAD
        x = self.token_embed(ids) + self.pos_embed[:, : ids.shape[1]]
        return self.norm(self.blocks(x, src_key_padding_mask=~mask))

    def forward(self, ids: Tensor, mask: Tensor | None = None) -> Tensor:
        """Pooled embeddings of tokenised texts.

        Args:
            ids: [B, L] byte ids, L <= ``max_length``.
            mask: [B, L] bool, True on real tokens; None derives it from ``ids != pad``.

        Returns:
            [B, D] mean of the final token states (:meth:`token_states`) over the real tokens.
        """
        if mask is None:
            mask = ids != PAD
        x = self.token_states(ids, mask)
        weights = mask.unsqueeze(-1).to(x.dtype)
        return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)

    def encode_text(self, texts: list[str]) -> Tensor:
        """Tokenise ``texts`` (B strings) on this module's device and embed them: [B, D]."""
        ids, mask = self.tokenizer(texts)
        device = self.pos_embed.device
        return self(ids.to(device), mask.to(device))
