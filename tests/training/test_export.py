import pytest
import torch

from avpretrain.export import load_encoders, model_from_checkpoint, save_encoders
from avpretrain.models import AVMAE
from avpretrain.pretrain import AVMAEPretrain


def _model() -> AVMAE:
    return AVMAE("tiny", "tiny_decoder", audio_shape=(32, 64), video_size=32, fusion_layers=1)


def test_exported_encoders_reproduce_embeddings(tmp_path):
    torch.manual_seed(0)
    model = _model()
    path = save_encoders(model, tmp_path / "enc.pt")
    loaded = load_encoders(path)
    audio, video = torch.randn(2, 1, 32, 64), torch.randn(2, 3, 32, 32)
    model.eval(), loaded.eval()
    want, got = model.encode(audio, video), loaded.encode(audio, video)
    for key in ("audio_embedding", "video_embedding", "tokens"):
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    saved = torch.load(path, weights_only=True)["state_dict"]
    assert not any(k.startswith(("audio_decoder.", "video_decoder.")) for k in saved)


def test_export_from_lightning_checkpoint(tmp_path):
    module = AVMAEPretrain(_model())
    ckpt = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "last.ckpt")
    model = model_from_checkpoint(tmp_path / "last.ckpt")
    for (name, a), b in zip(
        module.model.state_dict().items(), model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_loading_a_non_export_names_the_file(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt"):
        load_encoders(tmp_path / "other.pt")
