import pytest
import torch

from avpretrain.export import main
from avpretrain.models import AVMAE
from avpretrain.models.encoder_file import load_encoders, model_from_checkpoint, save_encoders
from avpretrain.pretrain import AVMAEPretrain
from avpretrain.training.resume import check_ckpt_path


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


def test_export_refuses_non_finite_weights(tmp_path, capsys):
    module = AVMAEPretrain(_model())
    with torch.no_grad():
        next(module.model.parameters())[0] = float("nan")
    ckpt = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "last.ckpt")
    assert main(["--ckpt", str(tmp_path / "last.ckpt"), "--out", str(tmp_path / "enc.pt")]) == 2
    err = capsys.readouterr().err
    first = next(iter(module.model.state_dict()))
    assert "last.ckpt: refusing to export non-finite weights" in err and first in err
    assert not (tmp_path / "enc.pt").exists()


def test_ckpt_path_given_an_encoder_file_says_to_use_the_encoders_option(tmp_path):
    encoders = save_encoders(_model(), tmp_path / "enc.pt")
    with pytest.raises(ValueError, match=r"encoder file .* --model.init_args.encoders .*enc.pt"):
        check_ckpt_path(encoders)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match=r"plain.pt: not a Lightning checkpoint"):
        check_ckpt_path(tmp_path / "plain.pt")
    check_ckpt_path("last")  # Lightning's own names pass through
