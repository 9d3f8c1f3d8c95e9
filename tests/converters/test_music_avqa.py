"""MUSIC-AVQA converter and official vocabularies on a tiny question file."""

import json
import logging
from pathlib import Path

import pytest

from avpretrain.cli import main as cli_main
from avpretrain.converters.music_avqa import (
    answer_vocabulary,
    convert,
    question_tokens,
    question_vocabulary,
)
from avpretrain.data.ingest.manifest import read_inputs

RECORDS = [
    {
        "video_id": "00000238",
        "question_id": 8,
        "type": '["Audio-Visual", "Counting"]',
        "question_content": "How many instruments are sounding in the video?",
        "templ_values": "[]",
        "question_deleted": 0,
        "anser": "two",
    },
    {
        "video_id": "sa00007434",
        "question_id": 28884,
        "type": '["Visual", "Counting"]',
        "question_content": "Are there <Object> and <Object> instruments in the video?",
        "templ_values": '["piano", "ukulele"]',
        "question_deleted": 0,
        "anser": "no",
    },
    {
        "video_id": "00000238",
        "question_id": 50,
        "type": '["Audio-Visual", "Temporal"]',
        "question_content": "Where is the <FL> sounding instrument?",
        "templ_values": '["first"]',
        "question_deleted": 0,
        "anser": "left",
    },
    {
        "video_id": "00000999",
        "question_id": 51,
        "type": '["Audio", "Comparative"]',
        "question_content": "Is the <Object> louder than the <Object>?",
        "templ_values": '["guitar", "piano"]',
        "question_deleted": 1,
        "anser": "two",
    },
]


@pytest.fixture
def avqa(tmp_path: Path) -> dict[str, Path]:
    videos = tmp_path / "videos"
    for sub, name in (("real", "00000238.mp4"), ("synthetic", "sa00007434.mp4")):
        (videos / sub).mkdir(parents=True)
        (videos / sub / name).write_bytes(b"")
    questions = tmp_path / "avqa-train.json"
    questions.write_text(json.dumps(RECORDS, indent=4))
    return {"videos": videos, "questions": questions}


def test_question_filling_as_the_official_dataloader():
    assert (
        question_tokens(RECORDS[1])
        == "Are there piano and ukulele instruments in the video".split()
    )
    # "?" is cut from the last word; placeholders are filled in order
    assert question_tokens(RECORDS[2]) == ["Where", "is", "the", "first", "sounding", "instrument"]
    short = {**RECORDS[1], "templ_values": '["piano"]'}
    with pytest.raises(ValueError, match="placeholders"):
        question_tokens(short)


def test_vocabularies_in_first_seen_order():
    assert answer_vocabulary(RECORDS) == ["two", "no", "left"]
    vocab = question_vocabulary(RECORDS)
    assert vocab[:4] == ["<pad>", "How", "many", "instruments"]
    assert len(vocab) == len(set(vocab))
    assert "piano" in vocab and "<Object>" not in vocab


def test_convert_groups_questions_by_video(avqa, tmp_path, caplog):
    out, vocab = tmp_path / "train.jsonl", tmp_path / "answers.json"
    with caplog.at_level(logging.WARNING):
        summary = convert(avqa["questions"], avqa["videos"], out, answer_vocab_out=vocab)
    assert summary == {
        "videos": 2,
        "questions": 3,
        "missing_videos": 1,
        "missing_questions": 1,
        "answers": 3,
        "out": str(out),
    }
    assert "00000999" in caplog.text
    assert json.loads(vocab.read_text()) == ["two", "no", "left"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["00000238", "sa00007434"]
    assert rows[0]["path"].endswith("real/00000238.mp4")
    assert (rows[0]["start"], rows[0]["end"]) == (0.0, 60.0)
    assert rows[0]["annotations"]["questions"] == [
        {
            "question": "How many instruments are sounding in the video",
            "answer": "two",
            "modality": "Audio-Visual",
            "type": "Counting",
            "question_id": 8,
        },
        {
            "question": "Where is the first sounding instrument",
            "answer": "left",
            "modality": "Audio-Visual",
            "type": "Temporal",
            "question_id": 50,
        },
    ]
    sources, classes = read_inputs(out)  # the manifest reads back through ingest
    assert classes is None and len(sources) == 2
    assert sources[1].clips[0].annotations["questions"][0]["question_id"] == 28884


def test_clip_length_option_and_bad_input(avqa, tmp_path):
    out = tmp_path / "o.jsonl"
    convert(avqa["questions"], avqa["videos"], out, clip_seconds=10, check_videos=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and rows[2]["end"] == 10.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{k: v for k, v in RECORDS[0].items() if k != "anser"}]))
    with pytest.raises(ValueError, match=r"bad\.json: record 0 lacks \['anser'\]"):
        convert(bad, avqa["videos"], out)
    bad.write_text(json.dumps([{**RECORDS[0], "type": '["Audio"]'}]))
    with pytest.raises(ValueError, match="record 0"):
        convert(bad, avqa["videos"], out)


def test_cli_subcommand(avqa, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    argv = ["convert-music-avqa", str(avqa["questions"]), "--videos", str(avqa["videos"])]
    assert cli_main([*argv, "--out", str(out), "--clip-seconds", "30"]) == 0
    assert json.loads(capsys.readouterr().out)["questions"] == 3
    assert json.loads(out.read_text().splitlines()[0])["end"] == 30.0
    assert cli_main([*argv, "--out", str(out), "--clip-seconds", "0"]) == 2
