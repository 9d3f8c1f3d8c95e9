"""CLAP and CLIP embedders through their real loading path, on tiny random models saved offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from avpretrain.curation.hf_embedders import ClapEmbedder, ClipEmbedder  # noqa: E402
from tests.curation.hf_models import DIM, tiny_clap, tiny_clip  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_clap(tmp_path_factory.mktemp("clap"))


def test_clip_embeds_text_and_frames(clip_dir: Path) -> None:
    emb = ClipEmbedder(clip_dir)
    text = emb.embed_text(["a red circle", "dog"])
    frames = torch.randint(0, 256, (3, 3, 40, 48), dtype=torch.uint8)
    image = emb.embed_frames(frames)
    assert text.shape == (2, DIM) and image.shape == (3, DIM)
    assert torch.isfinite(image).all() and not torch.allclose(image[0], image[1])
    # the processor pads: a caption's embedding does not depend on its batch-mates
    torch.testing.assert_close(emb.embed_text(["dog"])[0], text[1], atol=1e-5, rtol=1e-4)
    with pytest.raises(NotImplementedError):
        emb.embed_audio([np.zeros(100, np.float32)], 16000)


def test_clap_embeds_text_and_audio(clap_dir: Path) -> None:
    emb = ClapEmbedder(clap_dir)
    text = emb.embed_text(["a dog barks", "rain"])
    rng = np.random.default_rng(0)
    # 8 kHz input is resampled to the processor's 16 kHz
    audio = emb.embed_audio([rng.standard_normal(4000).astype(np.float32) for _ in range(3)], 8000)
    assert text.shape == (2, DIM) and audio.shape == (3, DIM)
    assert torch.isfinite(audio).all() and not torch.allclose(audio[0], audio[1])
    with pytest.raises(NotImplementedError):
        emb.embed_frames(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config.json missing"):
        ClipEmbedder(tmp_path)


def test_long_captions_are_truncated_to_the_position_table(clip_dir: Path, clap_dir: Path) -> None:
    caption = "a very long caption " * 20  # far beyond either tiny model's positions
    assert ClipEmbedder(clip_dir).embed_text([caption]).shape == (1, DIM)
    assert ClapEmbedder(clap_dir).embed_text([caption]).shape == (1, DIM)
