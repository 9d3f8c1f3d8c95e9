"""AVSD converter on tiny files in the official layout (dialogs and DSTC7 references)."""

import json
import logging
from pathlib import Path

import pytest

from avpretrain.cli import main as cli_main
from avpretrain.converters.avsd import convert
from avpretrain.data.ingest.manifest import read_inputs


def _dialog(image_id: str, last_answer: str) -> dict:
    return {
        "image_id": image_id,
        "caption": f"a person in {image_id} opens a door.",
        "summary": "the person opens a door and leaves.",
        "dialog": [
            {"question": "is there any sound?", "answer": "yes, a door creaks."},
            {"question": "does anyone talk?", "answer": "no one talks."},
            {"question": "what happens at the end?", "answer": last_answer},
        ],
    }


@pytest.fixture
def avsd(tmp_path: Path) -> dict[str, Path]:
    videos = tmp_path / "Charades_v1_480"
    videos.mkdir()
    for name in ("QRTLC", "ZZ0AB"):
        (videos / f"{name}.mp4").write_bytes(b"")
    train = tmp_path / "train_set4DSTC7-AVSD.json"
    dialogs = [_dialog("QRTLC", "he leaves."), _dialog("ZZ0AB", "she sits."), _dialog("NOVID", "x")]
    train.write_text(json.dumps({"dialogs": dialogs}))
    test = tmp_path / "test_set4DSTC7-AVSD.json"
    hidden = [_dialog("QRTLC", "__UNDISCLOSED__"), _dialog("ZZ0AB", "__UNDISCLOSED__")]
    test.write_text(json.dumps({"dialogs": hidden}))
    refs = tmp_path / "test_set4DSTC7-AVSD_multiref.json"
    captions = [("QRTLC_2", f"he leaves {i}.") for i in range(6)] + [("ZZ0AB", "she sits.")]
    annotations = [{"image_id": i, "caption": c, "id": n} for n, (i, c) in enumerate(captions)]
    refs.write_text(json.dumps({"annotations": annotations, "images": []}))
    return {"videos": videos, "train": train, "test": test, "refs": refs}


def test_convert_writes_one_row_per_dialog(avsd, tmp_path, caplog):
    out = tmp_path / "train.jsonl"
    with caplog.at_level(logging.WARNING):
        summary = convert(avsd["train"], avsd["videos"], out)
    assert summary == {
        "dialogs": 2,
        "rounds": 6,
        "missing_videos": 1,
        "with_references": 0,
        "out": str(out),
    }
    assert "NOVID" in caplog.text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["QRTLC", "ZZ0AB"]
    assert rows[0]["path"].endswith("Charades_v1_480/QRTLC.mp4")
    assert (rows[0]["start"], rows[0]["end"]) == (0.0, 30.0)
    assert rows[0]["caption"] == "a person in QRTLC opens a door."
    assert rows[0]["annotations"] == {
        "dialog_id": "QRTLC",
        "caption": "a person in QRTLC opens a door.",
        "summary": "the person opens a door and leaves.",
        "dialog": _dialog("QRTLC", "he leaves.")["dialog"],
    }
    sources, _ = read_inputs(out)  # the manifest reads back through ingest
    assert sources[1].clips[0].annotations["dialog"][2]["answer"] == "she sits."


def test_test_split_takes_the_dstc7_references(avsd, tmp_path):
    out = tmp_path / "test.jsonl"
    summary = convert(avsd["test"], avsd["videos"], out, references=avsd["refs"])
    assert summary["with_references"] == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    last = rows[0]["annotations"]["dialog"][-1]
    assert last["references"] == [f"he leaves {i}." for i in range(6)]
    assert last["answer"] == "he leaves 0."  # the hidden answer: its first reference
    assert rows[1]["annotations"]["dialog"][-1]["references"] == ["she sits."]
    assert "references" not in rows[0]["annotations"]["dialog"][0]
    with pytest.raises(ValueError, match=r"dialogs\[0\] \(image_id 'QRTLC'\).*__UNDISCLOSED__"):
        convert(avsd["test"], avsd["videos"], out)


def test_bad_input_names_the_dialog_and_field(avsd, tmp_path):
    bad, out = tmp_path / "bad.json", tmp_path / "o.jsonl"
    broken = _dialog("QRTLC", "ok")
    del broken["dialog"][1]["answer"]
    bad.write_text(json.dumps({"dialogs": [_dialog("ZZ0AB", "ok"), broken]}))
    with pytest.raises(
        ValueError, match=r"bad\.json: dialogs\[1\] \(image_id 'QRTLC'\): dialog\[1\]"
    ):
        convert(bad, avsd["videos"], out)
    bad.write_text(json.dumps({"dialogs": [{k: v for k, v in broken.items() if k != "caption"}]}))
    with pytest.raises(ValueError, match=r"dialogs\[0\] \(image_id 'QRTLC'\) lacks \['caption'\]"):
        convert(bad, avsd["videos"], out)
    bad.write_text(json.dumps({"dialogs": [{**_dialog("QRTLC", "ok"), "caption": 3}]}))
    with pytest.raises(ValueError, match="caption must be a string"):
        convert(bad, avsd["videos"], out)
    bad.write_text(json.dumps([_dialog("QRTLC", "ok")]))
    with pytest.raises(ValueError, match="'dialogs' list"):
        convert(bad, avsd["videos"], out)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        convert(bad, avsd["videos"], out)
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({"annotations": [{"image_id": "UNKNOWN_9", "caption": "x"}]}))
    with pytest.raises(ValueError, match=r"annotations\[0\]: image_id 'UNKNOWN_9' names no dialog"):
        convert(avsd["test"], avsd["videos"], out, references=refs)


def test_cli_subcommand(avsd, tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    argv = ["convert-avsd", str(avsd["test"]), "--videos", str(avsd["videos"]), "--out", str(out)]
    assert cli_main([*argv, "--references", str(avsd["refs"]), "--clip-seconds", "20"]) == 0
    assert json.loads(capsys.readouterr().out)["dialogs"] == 2
    assert json.loads(out.read_text().splitlines()[0])["end"] == 20.0
    assert cli_main(argv) == 2  # hidden answers without references
    assert "__UNDISCLOSED__" in capsys.readouterr().err
