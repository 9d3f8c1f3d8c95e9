"""``curate --plugin``: an outside embedder (as ImageBind would be) fills the pairs it embeds."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch

from avpretrain.curation.cli import main as curate_main
from avpretrain.curation.plugins import load_plugin


class TextAudioOnly:
    """Embeds captions by length and audio by loudness: both 2-d, one shared (toy) space."""

    name = "toy"
    modalities = {"text", "audio"}

    def __init__(self, arg: str | None, device: str) -> None:
        self.arg, self.device = arg, device

    def embed_audio(self, waveforms: list, sample_rate: int) -> torch.Tensor:
        rms = torch.stack([torch.as_tensor(w).float().pow(2).mean().sqrt() for w in waveforms])
        return torch.stack([rms, torch.ones_like(rms)], dim=1)

    def embed_frames(self, frames: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("no frames")

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([[len(t) / 10.0, 1.0] for t in texts])


@pytest.fixture
def toy_module(monkeypatch: pytest.MonkeyPatch) -> str:
    module = types.ModuleType("toy_embedders")
    module.make = TextAudioOnly
    module.not_an_embedder = lambda arg, device: object()
    monkeypatch.setitem(sys.modules, "toy_embedders", module)
    return "toy_embedders"


def test_load_plugin_checks_the_protocol(toy_module: str) -> None:
    emb = load_plugin(f"{toy_module}:make", "weights.pth", "cpu")
    assert isinstance(emb, TextAudioOnly) and emb.arg == "weights.pth"
    with pytest.raises(ValueError, match="MODULE:CALLABLE"):
        load_plugin(toy_module)
    with pytest.raises(ValueError, match="no_such"):
        load_plugin(f"{toy_module}:no_such")
    with pytest.raises(ValueError, match="returned a object"):
        load_plugin(f"{toy_module}:not_an_embedder")


def test_curate_scores_with_a_plugin(toy_module: str, tiny_world: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [str(tiny_world / "val"), "--out", str(out), "--embedder", "none"]
    assert curate_main([*args, "--plugin", f"{toy_module}:make", "--plugin-arg", "v1"]) == 0
    cache = json.loads(next((out / "scores").glob("*.json")).read_text())
    assert cache["embedders"] == {"text_audio": [f"{toy_module}:make", "v1"]}
    for clip in cache["clips"]:
        s = clip["scores"]
        assert s["audio_visual"] is None and s["text_visual"] is None  # not embedded by it
        assert 0.5 <= s["text_audio"] <= 1.0  # both toy vectors are in the positive quadrant
