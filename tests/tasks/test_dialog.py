"""dialog: targets (synthetic and converted AVSD), round selection, the CLI run."""

from __future__ import annotations

import json

import pytest
import torch
import webdataset as wds

from avpretrain.converters.avsd import convert
from avpretrain.heads.dialog import DialogHead
from avpretrain.heads.text import TextEncoder
from avpretrain.lightning_cli import run_lightning_cli
from avpretrain.tasks.dialog import DialogTask, history_text
from avpretrain.tasks.targets.dialog import answer_sentence, dialog_targets, question_type

from .helpers import BACKBONE, ROOT, logged_rows, task_recipe, tiny_encoders, write


def _metas(directory):
    urls = sorted(str(p) for p in directory.glob("*.tar"))
    return [json.loads(s["json"]) for s in wds.WebDataset(urls, shardshuffle=False)]


def test_answer_sentences():
    assert answer_sentence("3", "audio", "counting") == "i can hear 3 different sounds."
    assert answer_sentence("yes", "audio-visual", "existential") == "yes, it is."
    assert answer_sentence("top left", "visual", "location") == "it is at the top left."
    assert answer_sentence("off-screen", "audio-visual", "location") == "it is off-screen."
    assert answer_sentence("bell", "audio", "new type") == "bell."
    assert question_type("Is he holding a cup?") == "is"


def test_synthetic_targets_make_one_round_per_question(tiny_world):
    for meta in _metas(tiny_world / "val"):
        dialog = dialog_targets({"__key__": "k"}, meta, None)["dialog"]
        stored = meta["synthetic"]["questions"]
        assert dialog["caption"] == meta["caption"] and dialog["id"] == meta["video_id"]
        assert [t["question"] for t in dialog["turns"]] == [q["question"] for q in stored]
        for turn, q in zip(dialog["turns"], stored, strict=True):
            assert turn["references"] == [turn["answer"]]
            assert turn["answer"] == answer_sentence(q["answer"], q["modality"], q["type"])
            assert turn["type"] == f"{q['modality']} {q['type']}"


def test_converted_avsd_targets_keep_the_references(tmp_path):
    dialogs = {
        "dialogs": [
            {
                "image_id": "ABC12",
                "caption": "a man drinks.",
                "summary": "he drinks from a cup.",
                "dialog": [
                    {"question": "is there sound?", "answer": "no."},
                    {"question": "what does he hold?", "answer": "__UNDISCLOSED__"},
                ],
            }
        ]
    }
    refs = {"annotations": [{"image_id": "ABC12_1", "caption": c} for c in ("a cup.", "a mug.")]}
    (tmp_path / "d.json").write_text(json.dumps(dialogs))
    (tmp_path / "r.json").write_text(json.dumps(refs))
    out = tmp_path / "m.jsonl"
    convert(tmp_path / "d.json", tmp_path, out, tmp_path / "r.json", check_videos=False)
    row = json.loads(out.read_text())
    meta = {"annotations": row["annotations"], "caption": row["caption"]}
    dialog = dialog_targets({"__key__": "ABC12"}, meta, None)["dialog"]
    assert dialog["id"] == "ABC12" and dialog["summary"] == "he drinks from a cup."
    assert dialog["turns"][0] == {
        "question": "is there sound?",
        "answer": "no.",
        "references": ["no."],
        "type": "is",
    }
    assert dialog["turns"][1]["references"] == ["a cup.", "a mug."]
    with pytest.raises(ValueError, match="'clip7' has no dialog"):
        dialog_targets({"__key__": "clip7"}, {"caption": "x"}, None)


def test_history_keeps_the_latest_rounds_that_fit():
    turns = [{"question": f"q{i}?", "answer": f"a{i}."} for i in range(4)]
    assert history_text(turns, 0, 100, None) == ""
    assert history_text(turns, 3, 100, None) == "q0? a0. q1? a1. q2? a2."
    assert history_text(turns, 3, 100, 1) == "q2? a2."
    assert history_text(turns, 3, 15, None) == "q1? a1. q2? a2."  # 15 bytes: two rounds


def _small_task(**kwargs):
    head = DialogHead(dim=16, depth=1, text_encoder=TextEncoder(width=16, depth=1, max_length=40))
    return DialogTask(head, num_segments=2, backbone=BACKBONE, **kwargs)


def test_rounds_selected_for_training_and_evaluation():
    turns = [
        {"question": f"q{i}", "answer": f"a{i}", "references": [f"a{i}", "r"], "type": "t"}
        for i in range(3)
    ]
    batch = {
        "dialog": [
            {"id": "d0", "caption": "c0", "summary": "s0", "turns": turns},
            {"id": "d1", "caption": "c1", "summary": "", "turns": turns[:1]},
        ]
    }
    last = _small_task(eval_turns="last").select_turns(batch, train=False)
    assert last["keys"] == ["d0#2", "d1#0"] and last["clip_index"].tolist() == [0, 1]
    assert last["texts"]["history"] == ["q0 a0 q1 a1", ""]
    assert last["references"] == [["a2", "r"], ["a0", "r"]]
    task = _small_task(eval_turns="all", train_turns=1, use_summary=True)
    every = task.select_turns(batch, train=False)
    assert every["keys"] == ["d0#0", "d0#1", "d0#2", "d1#0"]
    assert every["texts"]["caption"][0] == "c0 s0"
    assert task.select_turns(batch, train=True)["clip_index"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="inputs='av'"):
        _small_task(inputs="audio")
    with pytest.raises(ValueError, match="eval_turns"):
        _small_task(eval_turns="first")


@pytest.mark.parametrize("recipe", ["synth.yaml", "avsd.yaml"])
def test_recipes_parse(recipe, capsys):
    with pytest.raises(SystemExit) as exc:
        run_lightning_cli(
            ["fit", "--config", str(ROOT / "tasks/dialog" / recipe), "--print_config"]
        )
    assert exc.value.code == 0
    printed = capsys.readouterr().out
    assert "class_path: avpretrain.heads.dialog.DialogHead" in printed
    assert "avpretrain.tasks.targets.dialog.dialog_targets" in printed


def test_linear_probe_through_cli_generates_and_scores_every_val_dialog(tiny_world, tmp_path):
    enc = tiny_encoders(tmp_path / "enc.pt")
    cfg = task_recipe("dialog/synth.yaml", tiny_world, tmp_path / "run")
    cfg["trainer"].update(max_epochs=1, num_sanity_val_steps=0, check_val_every_n_epoch=1)
    init = cfg["model"]["init_args"]
    init.update(num_segments=2, meteor=False, beam_size=2)  # 2 s clips; METEOR: slow JVM start
    init["head"]["init_args"].update(dim=32, depth=1, max_answer_length=24)
    init["head"]["init_args"]["text_encoder"]["init_args"].update(width=32, depth=1)
    cfg["data"]["init_args"]["num_frames_per_clip"] = 2
    path = write(cfg, tmp_path / "dialog.yaml")
    cli = run_lightning_cli(["fit", "--config", str(path), "--model.init_args.encoders", str(enc)])
    before = torch.load(enc, weights_only=True)["state_dict"]
    after = cli.model.backbone.state_dict()
    for name, value in before.items():
        assert torch.equal(after[name], value), name
    assert cli.trainer.global_step > 0
    (val,) = [r for r in logged_rows(tmp_path / "run") if r.get("val/CIDEr")]
    metas = _metas(tiny_world / "val")
    assert float(val["val/answers"]) == sum(len(m["synthetic"]["questions"]) for m in metas)
    for key in ("Bleu_1", "Bleu_4", "ROUGE_L", "CIDEr", "baseline_Bleu_4", "baseline_CIDEr"):
        assert float(val[f"val/{key}"]) >= 0.0, key
    assert float(val["val/ptb_tokenizer"]) in (0.0, 1.0)
    answers = json.loads(next((tmp_path / "run").glob("**/val_answers.json")).read_text())
    assert {a["key"].split("#")[0] for a in answers} == {m["video_id"] for m in metas}
    assert all(isinstance(a["answer"], str) and a["references"] for a in answers)


@pytest.mark.parametrize("mode", ["linear_probe", "partial", "finetune"])
def test_answer_loss_trains_the_encoders_only_outside_the_linear_probe(mode):
    torch.manual_seed(0)
    task = _small_task(mode=mode, trainable_blocks=1, eval_turns="all").train()
    turn = {"question": "is it loud?", "answer": "yes.", "references": ["yes."], "type": "is"}
    batch = {
        "audio": torch.randn(2, 1, 128, 192),
        "video": torch.randn(2, 3, 2, 32, 32),
        "dialog": [{"id": f"d{i}", "caption": "c", "summary": "", "turns": [turn]} for i in (0, 1)],
    }
    loss = task.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and task.head.out.weight.grad is not None
    grads = [p.grad for p in task.backbone.parameters() if p.grad is not None]
    assert (len(grads) > 0) == (mode != "linear_probe")
    assert task.answer_counts == {"is": {"yes.": 2}}
    task.eval()
    with torch.no_grad():
        selection = task.select_turns(batch, train=False)
        answers = task.generate(*task.memory(batch, selection))
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
