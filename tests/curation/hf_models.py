"""Tiny random CLAP and CLIP models saved offline, for the embedder and curate tests.

The tokenizers are byte-pair tokenizers built from a vocabulary written here (letters only, no
merges), so nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

DIM = 16


def _vocab_files(folder: Path) -> tuple[str, str, int]:
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return str(folder / "vocab.json"), str(folder / "merges.txt"), len(vocab)


def tiny_clip(folder: Path) -> Path:
    """Save a tiny CLIP (32-wide, one layer, 32 px images) and its processor to ``folder/model``."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    vocab, merges, size = _vocab_files(folder)
    tokenizer = CLIPTokenizer(vocab, merges)
    layer = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    text = dict(layer, vocab_size=size, max_position_embeddings=32)
    text.update(bos_token_id=0, eos_token_id=1, pad_token_id=1)
    config = CLIPConfig(
        text_config=text,
        vision_config=dict(layer, image_size=32, patch_size=8),
        projection_dim=DIM,
    )
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder / "model")
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder / "model")
    return folder / "model"


def tiny_clap(folder: Path) -> Path:
    """Save a tiny CLAP (one-layer text, two-stage HTS-AT audio, 1 s at 16 kHz) to ``folder/model``."""
    from transformers import (
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        RobertaTokenizer,
    )

    vocab, merges, size = _vocab_files(folder)
    special = dict.fromkeys(("eos_token", "unk_token", "pad_token", "sep_token", "mask_token"))
    special = {k: "<|endoftext|>" for k in special}
    tokenizer = RobertaTokenizer(
        vocab, merges, bos_token="<|startoftext|>", cls_token="<|startoftext|>", **special
    )
    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    text.update(vocab_size=size + 2, max_position_embeddings=40, projection_dim=DIM)
    text.update(pad_token_id=1, bos_token_id=0, eos_token_id=1)
    audio = dict(spec_size=64, window_size=4, num_mel_bins=16, patch_size=4, patch_stride=(4, 4))
    audio.update(hidden_size=32, depths=[1, 1], num_attention_heads=[2, 2])
    audio.update(patch_embeds_hidden_size=16, projection_dim=DIM, enable_fusion=False)
    config = ClapConfig(text_config=text, audio_config=audio, projection_dim=DIM)
    torch.manual_seed(0)
    ClapModel(config).save_pretrained(folder / "model")
    # "rand_trunc" gives the single-channel input of the unfused CLAP models
    features = ClapFeatureExtractor(
        feature_size=16,
        sampling_rate=16000,
        hop_length=160,
        max_length_s=1,
        fft_window_size=1024,
        truncation="rand_trunc",
    )
    ClapProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(folder / "model")
    return folder / "model"
