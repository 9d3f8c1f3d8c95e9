"""Video parsing on the tiny world: targets (synthetic and LLP layouts) and the task via the CLI."""

from __future__ import annotations

import pytest
import torch

from avpretrain.data.loading.datamodule import AVDataModule
from avpretrain.data.loading.samples import SampleOptions
from avpretrain.heads.parsing import ParsingHead
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.tasks.parsing import ParsingTask, metric_key
from avpretrain.tasks.targets.parsing import parsing_targets

from .helpers import BACKBONE, ROOT, logged_rows, task_recipe, tiny_encoders, write

CLASSES, SECONDS = 4, 2  # the tiny world


def _reference(meta):
    """Dense ground truth from the objects' own flags (not from ``synthetic.events``)."""
    audio, visual = torch.zeros(CLASSES, SECONDS), torch.zeros(CLASSES, SECONDS)
    for obj in meta["synthetic"]["objects"]:
        for s in range(SECONDS):
            if obj["sounding"] and obj["audio_on"][s]:
                audio[obj["class_id"], s] = 1
            if obj["on_screen"]:
                visual[obj["class_id"], s] = 1
    return audio, visual


def test_targets_on_tiny_world(tiny_world):
    dm = AVDataModule(
        val_urls=str(tiny_world / "val"),
        batch_size=8,
        num_workers=0,
        frame_size=32,
        num_classes=CLASSES,
        num_frames_per_clip=SECONDS,
        keep_meta=True,
        targets=parsing_targets,
    )
    dm.setup("validate")
    batch = next(iter(dm.val_dataloader()))
    assert batch["weak"].shape == (8, CLASSES) and batch["audio_gt"].shape == (8, CLASSES, 2)
    assert batch["has_dense"].all()
    some_partial = False
    for i, meta in enumerate(batch["meta"]):
        audio, visual = _reference(meta)
        torch.testing.assert_close(batch["audio_gt"][i], audio)
        torch.testing.assert_close(batch["visual_gt"][i], visual)
        torch.testing.assert_close(batch["weak"][i], ((audio + visual).sum(1) > 0).float())
        some_partial |= bool((audio.sum(1) == 1).any())
    assert some_partial  # some event lasts one of the two seconds: the targets are not constant


def _opts(train: bool, segments: int = 10) -> SampleOptions:
    return SampleOptions(train=train, num_classes=25, num_frames_per_clip=segments)


def test_targets_read_llp_annotations():
    meta = {
        "annotations": {
            "weak": [0, 3],
            "audio_segments": [[0, 0, 4], [3, 3, 10], [0, 9, 9]],  # onset == offset marks nothing
            "visual_segments": [[3, 0, 10]],
        }
    }
    out = parsing_targets({"__key__": "BjCEufrlXm4_20_30"}, meta, _opts(train=False))
    assert out["weak"].nonzero().flatten().tolist() == [0, 3]
    assert out["audio_gt"][0].tolist() == [1] * 4 + [0] * 6
    assert out["audio_gt"][3].tolist() == [0] * 3 + [1] * 7
    assert out["audio_gt"].sum() == 11 and out["visual_gt"].sum() == 10
    weak_only = {"annotations": {"weak": [5]}}
    train = parsing_targets({"__key__": "k"}, weak_only, _opts(train=True))
    assert not train["has_dense"] and train["audio_gt"].sum() == 0 and train["weak"][5] == 1
    with pytest.raises(ValueError, match="'k' has no dense labels"):
        parsing_targets({"__key__": "k"}, weak_only, _opts(train=False))


def test_targets_refuse_a_segment_count_other_than_the_clip_seconds():
    meta = {"synthetic": {"events": {"audio": [[0], [1]], "visual": [[0], [0]]}}}
    with pytest.raises(ValueError, match="2 one-second segments, the loader expects 3"):
        parsing_targets({"__key__": "c"}, meta, SampleOptions(num_classes=4, num_frames_per_clip=3))


def _val_rows(run_dir):
    rows = logged_rows(run_dir)
    return [r for r in rows if r.get("val/segment_type_at_av")]


def test_linear_probe_through_cli_logs_parsing_metrics(tiny_world, tmp_path):
    enc = tiny_encoders(tmp_path / "enc.pt")
    cfg = task_recipe("parsing/synth.yaml", tiny_world, tmp_path / "run")
    cfg["model"]["init_args"]["head"]["init_args"].update(num_classes=CLASSES, dim=32, ffn_dim=32)
    cfg["model"]["init_args"]["num_segments"] = SECONDS
    cfg["data"]["init_args"].update(num_classes=CLASSES, num_frames_per_clip=SECONDS)
    path = write(cfg, tmp_path / "parsing.yaml")
    cli = run_lightning_cli(["fit", "--config", str(path), "--model.init_args.encoders", str(enc)])
    before = torch.load(enc, weights_only=True)["state_dict"]
    after = cli.model.backbone.state_dict()
    for name, value in before.items():
        assert torch.equal(after[name], value), name
    fresh = ParsingTask(ParsingHead(CLASSES, dim=32, ffn_dim=32), backbone=BACKBONE)
    assert not torch.equal(cli.model.head.fc_prob.weight, fresh.head.fc_prob.weight)
    assert cli.trainer.global_step > 0
    rows = _val_rows(tmp_path / "run")
    assert len(rows) == 2
    keys = [
        f"val/{level}_{kind}"
        for level in ("segment", "event")
        for kind in ("audio", "visual", "av", "type_at_av", "event_at_av")
    ]
    for row in rows:
        values = {k: float(row[k]) for k in keys}
        assert all(0.0 <= v <= 1.0 for v in values.values()), values
        mean = (
            values["val/segment_audio"] + values["val/segment_visual"] + values["val/segment_av"]
        ) / 3
        assert values["val/segment_type_at_av"] == pytest.approx(mean, abs=1e-6)


def test_task_checks_segments_and_inputs():
    assert metric_key("event/event@av") == "event_event_at_av"
    with pytest.raises(ValueError, match="inputs='av'"):
        ParsingTask(ParsingHead(4), backbone=BACKBONE, inputs="audio")
    task = ParsingTask(ParsingHead(4, dim=16, ffn_dim=16), backbone=BACKBONE, num_segments=2)
    batch = {
        "key": ["a"],
        "audio": torch.randn(1, 1, 128, 192),
        "video": torch.randn(1, 3, 2, 32, 32),
        "weak": torch.ones(1, 4),
        "audio_gt": torch.zeros(1, 4, 3),
    }
    with pytest.raises(ValueError, match="3 segments, the task num_segments=2"):
        task.training_step(batch, 0)
    batch["audio_gt"] = torch.zeros(1, 4, 2)
    out = task(batch)
    assert out["frame_prob"].shape == (1, 2, 2, 4)
    assert 0 < out["global_prob"].min() and out["global_prob"].max() < 1


@pytest.mark.parametrize("recipe", ["synth.yaml", "llp.yaml"])
def test_recipes_parse(recipe, capsys):
    with pytest.raises(SystemExit) as exc:
        run_lightning_cli(
            ["fit", "--config", str(ROOT / "tasks/parsing" / recipe), "--print_config"]
        )
    assert exc.value.code == 0
    printed = capsys.readouterr().out
    assert "class_path: avpretrain.heads.parsing.ParsingHead" in printed
    assert "avpretrain.tasks.targets.parsing.parsing_targets" in printed
