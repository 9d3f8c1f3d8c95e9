"""music_avqa: question targets (synthetic and converted MUSIC-AVQA), segments, the CLI run."""

from __future__ import annotations

import json

import pytest
import torch
import webdataset as wds

from avpretrain.converters.music_avqa import convert
from avpretrain.data.synthetic.questions import ANSWER_VOCAB
from avpretrain.heads.music_avqa import AVQAHead
from avpretrain.heads.text import TextEncoder
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.metrics.music_avqa import TYPE_NAMES
from avpretrain.tasks.music_avqa import MusicAVQATask, load_answers, metric_key
from avpretrain.tasks.segments import segment_inputs
from avpretrain.tasks.targets.music_avqa import question_targets

from .helpers import BACKBONE, ROOT, logged_rows, task_recipe, tiny_encoders, write


def _metas(directory):
    urls = sorted(str(p) for p in directory.glob("*.tar"))
    return [json.loads(s["json"]) for s in wds.WebDataset(urls, shardshuffle=False)]


def test_targets_keep_every_synthetic_question_with_official_names(tiny_world):
    for meta in _metas(tiny_world / "val"):
        out = question_targets({"__key__": "k"}, meta, None)["questions"]
        stored = meta["synthetic"]["questions"]
        assert [q["question"] for q in out] == [q["question"] for q in stored]
        assert all((q["modality"], q["type"]) in TYPE_NAMES for q in out)
        assert all(q["answer"] in ANSWER_VOCAB for q in out)
        assert out[0]["modality"] == "Audio" and out[0]["type"] == "Counting"


def test_targets_read_the_converted_music_avqa_format(tmp_path):
    records = [
        {
            "video_id": "00000001",
            "question_id": 7,
            "type": '["Audio-Visual", "Temporal"]',
            "question_content": "Where is the first sounding <Object>?",
            "templ_values": '["cello"]',
            "question_deleted": 0,
            "anser": "left",
        }
    ]
    (tmp_path / "q.json").write_text(json.dumps(records))
    out = tmp_path / "m.jsonl"
    convert(tmp_path / "q.json", tmp_path, out, check_videos=False, answer_vocab_out=tmp_path / "a")
    row = json.loads(out.read_text().splitlines()[0])
    (q,) = question_targets({"__key__": "00000001"}, {"annotations": row["annotations"]}, None)[
        "questions"
    ]
    assert q == {
        "question": "Where is the first sounding cello",
        "answer": "left",
        "modality": "Audio-Visual",
        "type": "Temporal",
    }
    assert load_answers(str(tmp_path / "a")) == ["left"]


def test_targets_and_answers_reject_bad_input(tmp_path):
    with pytest.raises(ValueError, match="'clip7' has no questions"):
        question_targets({"__key__": "clip7"}, {"caption": "x"}, None)
    bad = tmp_path / "answers.json"
    bad.write_text('{"yes": 1}')
    with pytest.raises(ValueError, match="answers.json"):
        load_answers(str(bad))


def test_segment_inputs_cut_spans_and_pick_centre_frames():
    audio = torch.arange(2 * 3 * 100, dtype=torch.float32).view(2, 1, 3, 100)
    video = (
        torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4, 1, 1).expand(-1, -1, -1, 2, 2)
    )
    chunks, frames = segment_inputs(audio, video, num_segments=3, patch_width=16)
    assert chunks.shape == (6, 1, 3, 32) and frames.shape == (6, 3, 2, 2)
    # segment i of clip b: fbank frames from floor(i * 100 / 3), 33 // 16 * 16 = 32 of them
    for b in range(2):
        for i, start in enumerate((0, 33, 66)):
            torch.testing.assert_close(chunks[3 * b + i], audio[b, :, :, start : start + 32])
            frame = int((i + 0.5) * 4 / 3)  # 0, 2, 3
            torch.testing.assert_close(frames[3 * b + i], video[b, :, frame])
    with pytest.raises(ValueError, match="cannot make 8 segments"):
        segment_inputs(audio, video, num_segments=8, patch_width=16)


@pytest.mark.parametrize("recipe", ["synth.yaml", "music_avqa.yaml"])
def test_recipes_parse(recipe, capsys):
    with pytest.raises(SystemExit) as exc:
        run_lightning_cli(
            ["fit", "--config", str(ROOT / "tasks/music_avqa" / recipe), "--print_config"]
        )
    assert exc.value.code == 0
    printed = capsys.readouterr().out
    assert "class_path: avpretrain.heads.music_avqa.AVQAHead" in printed
    assert "avpretrain.tasks.targets.music_avqa.question_targets" in printed


def test_metric_keys():
    assert metric_key("Overall") == "acc"
    assert metric_key("AV counting") == "acc_av_counting"
    assert metric_key("Audio Cmp") == "acc_audio_cmp"


def _small_task(**kwargs):
    head = AVQAHead(dim=16, text_encoder=TextEncoder(width=16, depth=1, max_length=96))
    kwargs.setdefault("answers", list(ANSWER_VOCAB))
    return MusicAVQATask(head, num_segments=2, backbone=BACKBONE, **kwargs)


def test_training_samples_questions_and_evaluation_keeps_all():
    task = _small_task(train_questions=1)
    qs = [
        {"question": f"q{i}", "answer": "yes", "modality": "Audio", "type": "Counting"}
        for i in range(4)
    ]
    batch = {"questions": [qs, qs[:2], qs[:1] + [{**qs[0], "answer": "maybe"}]]}
    train = task.select_questions(batch, train=True)
    assert train["clip_index"].tolist() == [0, 1, 2]
    full = task.select_questions(batch, train=False)
    assert full["clip_index"].tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    assert full["labels"].tolist() == [1] * 7 + [-1]  # "yes" is index 1; "maybe" is unknown
    with pytest.raises(ValueError, match="inputs='av'"):
        _small_task(inputs="audio")


def test_linear_probe_through_cli_scores_every_val_question(tiny_world, tmp_path):
    enc = tiny_encoders(tmp_path / "enc.pt")
    cfg = task_recipe("music_avqa/synth.yaml", tiny_world, tmp_path / "run")
    cfg["trainer"]["max_epochs"] = 1
    init = cfg["model"]["init_args"]
    init["num_segments"] = 2  # 2 s clips
    init["head"]["init_args"]["dim"] = 32
    init["head"]["init_args"]["text_encoder"]["init_args"].update(width=32, depth=1)
    cfg["data"]["init_args"]["num_frames_per_clip"] = 2
    path = write(cfg, tmp_path / "avqa.yaml")
    cli = run_lightning_cli(["fit", "--config", str(path), "--model.init_args.encoders", str(enc)])
    before = torch.load(enc, weights_only=True)["state_dict"]
    after = cli.model.backbone.state_dict()
    for name, value in before.items():
        assert torch.equal(after[name], value), name
    assert cli.trainer.global_step > 0
    rows = logged_rows(tmp_path / "run")
    (val,) = [r for r in rows if r.get("val/acc")]
    total = sum(len(m["synthetic"]["questions"]) for m in _metas(tiny_world / "val"))
    assert float(val["val/questions"]) == total
    for key in ("acc", "acc_audio", "acc_visual", "acc_av", "acc_audio_counting", "acc_av_ext"):
        assert 0.0 <= float(val[f"val/{key}"]) <= 1.0, key
    assert any(r.get("train/loss_match") for r in rows)
