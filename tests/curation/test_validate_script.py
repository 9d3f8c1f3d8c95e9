"""scripts/validate_curation.py end to end on a tiny world: the models never see a corrupted clip,
and every stage is judged on the clean clips plus its own corruption kind."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from avpretrain.data.shards import read_index, read_raw_samples

SCRIPT = Path(__file__).resolve().parents[2] / "scripts/validate_curation.py"


def _script():
    spec = importlib.util.spec_from_file_location("validate_curation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _metas(split: Path) -> list[dict]:
    return [
        json.loads(s["json"])
        for shard in read_index(split)["shards"]
        for s in read_raw_samples(shard["url"])
    ]


def _kinds(split: Path) -> list[str]:
    return [meta["synthetic"]["corruption"] or "clean" for meta in _metas(split)]


def test_validate_curation_runs_on_a_tiny_world(tmp_path: Path) -> None:
    work = tmp_path / "work"
    args = ["--workdir", str(work), "--clips", "48", "--val-clips", "24", "--seconds", "2"]
    args += ["--frame-size", "32", "--pretrain-steps", "2", "--retrieval-epochs", "1"]
    assert _script().main([*args, "--workers", "0"]) == 0
    train = _kinds(work / "world/train")
    assert _kinds(work / "clean") == ["clean"] * train.count("clean")  # no corruption trains
    assert (work / "pretrain/encoders.pt").exists() and (work / "retrieval/text_tower.pt").exists()
    val = _kinds(work / "world/val")
    clean, per_kind = val.count("clean"), val.count("swap_audio")
    assert per_kind == val.count("shift_audio") == val.count("swap_caption") == 2
    lines = (work / "validation.md").read_text().splitlines()
    rows = [line for line in lines[2:] if line.startswith("| ")]
    catches = ["swap_audio", "shift_audio", "swap_caption", "swap_audio"]
    assert [r.split(" | ")[2] for r in rows] == catches
    assert all(f"| {clean} / {per_kind} |" in r for r in rows[:3])
    # the last instance row leaves out the clean clips whose every sound is off-screen
    sourceless = sum(
        not any(o["sounding"] and o["on_screen"] for o in meta["synthetic"]["objects"])
        for meta in _metas(work / "world/val")
        if meta["synthetic"]["corruption"] is None
    )
    assert f"| {clean - sourceless} / {per_kind} |" in rows[3]
    scores = json.loads(next((work / "curated/scores").glob("*.json")).read_text())
    assert {"audio_visual", "temporal", "text_av"} <= set(scores["clips"][0]["scores"])
