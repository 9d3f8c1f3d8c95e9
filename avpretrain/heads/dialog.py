"""Answer generator of audio-visual scene-aware dialog (AVSD): a small transformer decoder.

The memory the decoder attends to is the clip's audio-visual tokens and the encoded text:

- **Audio-visual tokens**, per segment t of T: the segment's pooled audio embedding and its
  frame's patch tokens (or only the frame's pooled embedding, ``video_patches=False``), each
  projected to ``dim``, plus a learned segment embedding and a learned modality embedding.
- **Text**: the caption (and summary, where the task passes it), the dialog history (previous
  question-answer rounds) and the question, each through the shared
  :class:`~avpretrain.heads.text.TextEncoder` (the project's UTF-8 byte tokenizer) as token
  states, projected to ``dim``, plus a learned role embedding; padding is masked out.
- **The question's summary**, the mean of its token states, comes first in the memory and is
  also added to the decoder's first input (the ``bos`` position, which every later position
  attends to): the first bytes of an answer ("yes", "it is at", "i can see") are decided by the
  kind of question, and a decoder that must find the question among hundreds of memory tokens by
  cross-attention alone learned, in minutes on a CPU, to answer every question of a dialog round
  alike.

The decoder is a pre-norm ``nn.TransformerDecoder`` over byte ids (the same tokenizer, so the
answer is UTF-8 bytes: no vocabulary file), causally masked: teacher forcing in training
(:meth:`DialogHead.forward`), greedy or beam search at evaluation (:meth:`DialogHead.generate`,
:mod:`avpretrain.heads.decoding`). The AVSD baselines (Hori et al., DSTC7) use an LSTM decoder
over words on I3D / VGGish features; the transformer decoder follows the later AVSD systems.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avpretrain.heads.decoding import beam_search, greedy_decode
from avpretrain.heads.text import BOS, EOS, PAD, VOCAB_SIZE, ByteTokenizer, TextEncoder

ROLES = ("caption", "history", "question")


class DialogHead(nn.Module):
    """Audio-visual tokens and text in, answer bytes out.

    Input widths are bound by the task once the encoders are known (:meth:`bind`).

    Args:
        dim: width of the decoder and its memory.
        depth: decoder layers.
        num_heads: attention heads (must divide ``dim``).
        text_encoder: encoder of caption, history and question; None builds a 2-layer
            ``TextEncoder`` of width ``dim`` reading up to 128 bytes per text.
        max_answer_length: longest answer in bytes (the target is cut there in training, and
            generation stops there).
        video_patches: attend to every patch token of each segment's frame (False: its pooled
            embedding only, T tokens).
        dropout: dropout in the decoder layers.
        mlp_ratio: decoder MLP width as a multiple of ``dim``.
    """

    def __init__(
        self,
        dim: int = 256,
        depth: int = 2,
        num_heads: int = 4,
        text_encoder: TextEncoder | None = None,
        max_answer_length: int = 64,
        video_patches: bool = True,
        dropout: float = 0.1,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        if max_answer_length < 1:
            raise ValueError(f"max_answer_length must be >= 1, got {max_answer_length}")
        self.dim, self.video_patches = dim, video_patches
        self.max_answer_length = max_answer_length
        self.answer_tokenizer = ByteTokenizer(max_answer_length + 2)  # + bos, eos
        self.text_encoder = text_encoder or TextEncoder(width=dim, depth=2, max_length=128)
        self.text_proj = nn.Linear(self.text_encoder.width, dim)
        self.question_proj = nn.Linear(dim, dim)
        self.role_embed = nn.Parameter(torch.zeros(len(ROLES), dim))
        self.modality_embed = nn.Parameter(torch.zeros(2, dim))  # audio, video
        self.token_embed = nn.Embedding(VOCAB_SIZE, dim, padding_idx=PAD)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_answer_length + 1, dim))
        for p in (self.role_embed, self.modality_embed, self.pos_embed, self.token_embed.weight):
            nn.init.trunc_normal_(p, std=0.02)
        layer = nn.TransformerDecoderLayer(
            dim,
            num_heads,
            int(dim * mlp_ratio),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, depth)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, VOCAB_SIZE)
        self.proj_audio: nn.Linear | None = None
        self.proj_video: nn.Linear | None = None
        self.segment_embed: nn.Parameter | None = None

    def bind(self, audio_dim: int, video_dim: int, num_segments: int) -> None:
        """Build the audio-visual projections (no-op if built for these sizes)."""
        if self.proj_audio is not None:
            assert self.proj_video is not None and self.segment_embed is not None  # built together
            built = (self.proj_audio.in_features, self.proj_video.in_features)
            if built != (audio_dim, video_dim) or self.segment_embed.shape[0] != num_segments:
                raise ValueError(
                    f"head built for widths {built} and {self.segment_embed.shape[0]} segments, "
                    f"not {(audio_dim, video_dim)} and {num_segments}"
                )
            return
        self.proj_audio = nn.Linear(audio_dim, self.dim)
        self.proj_video = nn.Linear(video_dim, self.dim)
        self.segment_embed = nn.Parameter(torch.zeros(num_segments, self.dim))
        nn.init.trunc_normal_(self.segment_embed, std=0.02)

    def av_tokens(self, audio: Tensor, video: Tensor) -> Tensor:
        """Audio-visual memory of B clips.

        Args:
            audio: [B, T, Da] per-segment audio embeddings.
            video: [B, T, N, Dv] per-segment frame tokens (patches, or N = 1 pooled).

        Returns:
            [B, T (1 + N), dim]: per segment its audio token, then its frame tokens.
        """
        if self.proj_audio is None:
            raise RuntimeError("DialogHead.bind(audio_dim, video_dim, num_segments) was not called")
        assert self.proj_video is not None and self.segment_embed is not None  # built together
        seg = self.segment_embed[None, :, None]  # [1, T, 1, D]
        a = self.proj_audio(audio)[:, :, None] + seg + self.modality_embed[0]
        v = self.proj_video(video) + seg + self.modality_embed[1]
        return torch.cat([a, v], dim=2).flatten(1, 2)

    def text_tokens(self, texts: list[str], role: int) -> tuple[Tensor, Tensor]:
        """Token states [Q, L, dim] of Q texts and their mask [Q, L] (True on real tokens).

        Distinct texts are encoded once (captions repeat over a dialog's rounds), up to the
        longest one's length.
        """
        unique = list(dict.fromkeys(texts))
        ids, mask = self.text_encoder.tokenizer(unique)
        length = int(mask.sum(1).max())
        device = self.text_proj.weight.device
        ids, mask = ids[:, :length].to(device), mask[:, :length].to(device)
        states = self.text_proj(self.text_encoder.token_states(ids, mask)) + self.role_embed[role]
        index = {text: i for i, text in enumerate(unique)}
        where = torch.tensor([index[t] for t in texts], device=device)
        return states[where], mask[where]

    def memory(
        self,
        audio: Tensor,
        video: Tensor,
        clip_index: Tensor,
        texts: dict[str, list[str]],
    ) -> tuple[Tensor, Tensor]:
        """The decoder's memory for Q questions about B clips.

        Args:
            audio: [B, T, Da] (see :meth:`av_tokens`).
            video: [B, T, N, Dv].
            clip_index: [Q] long, the clip each question is about.
            texts: Q strings for each role of ``ROLES`` present (``caption``, ``history``,
                ``question``); a missing role is left out.

        Returns:
            ``memory`` [Q, M, dim] and ``mask`` [Q, M] bool, True on real tokens. Token 0 is
            the question's summary (the mean of its token states; zeros without a question),
            which :meth:`forward` also adds to the decoder's first input; then the audio-visual
            tokens, then each text's tokens.
        """
        av = self.av_tokens(audio, video)[clip_index]
        summary = av.new_zeros(av.shape[0], 1, self.dim)
        parts = [summary, av]
        masks = [torch.ones(av.shape[0], 1 + av.shape[1], dtype=torch.bool, device=av.device)]
        for role, name in enumerate(ROLES):
            if name in texts:
                states, mask = self.text_tokens(texts[name], role)
                parts.append(states)
                masks.append(mask)
                if name == "question":
                    weight = mask[..., None].to(states.dtype)
                    parts[0] = (states * weight).sum(1, keepdim=True) / weight.sum(1, keepdim=True)
        return torch.cat(parts, dim=1), torch.cat(masks, dim=1)

    def forward(self, memory: Tensor, memory_mask: Tensor, prefix: Tensor) -> Tensor:
        """Next-token logits after every position of the prefixes (causally masked).

        Args:
            memory: [Q, M, dim] (see :meth:`memory`; token 0 is the question's summary).
            memory_mask: [Q, M] bool, True on real tokens.
            prefix: [Q, L] byte ids starting with ``bos``, L <= ``max_answer_length + 1``.

        Returns:
            [Q, L, V] logits; position i sees tokens 0..i only.
        """
        length = prefix.shape[1]
        if length > self.pos_embed.shape[1]:
            raise ValueError(f"prefix of {length} exceeds max_answer_length + 1")
        x = self.token_embed(prefix) + self.pos_embed[:, :length]
        # the question at the bos position only: added to every position, its O(1) entries
        # drowned the 0.02-scale byte embeddings and the answers came out as garbled bytes
        first = x[:, :1] + self.question_proj(memory[:, :1])
        x = torch.cat([first, x[:, 1:]], dim=1)
        causal = torch.ones(length, length, dtype=torch.bool, device=prefix.device).triu(1)
        x = self.decoder(
            x,
            memory,
            tgt_mask=causal,
            tgt_is_causal=True,
            tgt_key_padding_mask=prefix == PAD,
            memory_key_padding_mask=~memory_mask,
        )
        return self.out(self.norm(x))

    def targets(self, answers: list[str]) -> tuple[Tensor, Tensor]:
        """Teacher-forcing ``inputs`` ([bos, bytes]) and ``labels`` ([bytes, eos], ``pad`` after).

        Each is [Q, L] long with L = the longest answer + 1 (at most ``max_answer_length + 1``).
        """
        ids, mask = self.answer_tokenizer(answers)
        length = int(mask.sum(1).max())
        ids = ids[:, :length].to(self.out.weight.device)
        return ids[:, :-1], ids[:, 1:]

    def generate(
        self,
        memory: Tensor,
        memory_mask: Tensor,
        beam_size: int = 1,
        length_penalty: float = 0.0,
        max_length: int | None = None,
    ) -> list[str]:
        """Answers of Q questions: greedy (``beam_size`` 1) or beam search.

        Args:
            memory: [Q, M, dim] (see :meth:`memory`).
            memory_mask: [Q, M] bool, True on real tokens.
            beam_size: beam width; 1 is greedy decoding.
            length_penalty: per-token bonus of a finished hypothesis (AVSD's ``penalty``).
            max_length: bytes to generate at most (None: ``max_answer_length``).

        Returns:
            Q decoded strings.
        """
        limit = min(max_length or self.max_answer_length, self.max_answer_length)

        def next_logits(prefix: Tensor, rows: Tensor) -> Tensor:
            return self(memory[rows], memory_mask[rows], prefix)[:, -1]

        args = (next_logits, memory.shape[0], BOS, EOS, PAD, limit)
        if beam_size == 1:
            ids = greedy_decode(*args, device=memory.device)
        else:
            ids = beam_search(*args, beam_size, length_penalty, device=memory.device)
        return [self.answer_tokenizer.decode(row) for row in ids]
