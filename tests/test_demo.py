"""``avpretrain demo`` end to end on a tiny world: the table, the seed, the reused world."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from avpretrain.demo import main


def _row(text: str, name: str) -> tuple[float, float]:
    match = re.search(rf"\| {re.escape(name)}\s+\|\s+([\d.]+) \|\s+([\d.]+) \|", text)
    assert match, f"no row {name!r} in:\n{text}"
    return float(match.group(1)), float(match.group(2))


def test_demo_prints_the_table_and_reuses_its_world(tmp_path: Path, capsys) -> None:
    argv = ["--out", str(tmp_path), "--clips", "32", "--max-steps", "2", "--batch-size", "8"]
    assert main([*argv, "--seed", "1", "--workers", "0"]) == 0
    first = capsys.readouterr().out
    assert "synthetic world (hard): 32 train / 8 val clips" in first
    assert "2 pretraining steps" in first
    before, after = _row(first, "reconstruction loss (val, fixed masks)")
    assert before > 0 and after > 0
    random_acc, pretrained_acc = _row(first, "linear probe top-1 (val)")
    assert 0 <= random_acc <= 1 and 0 <= pretrained_acc <= 1
    assert "pretrained - random:" in first
    encoders = torch.load(tmp_path / "encoders.pt", weights_only=False)
    assert encoders  # the exported encoders the task recipes take
    assert (tmp_path / "reconstruction.png").stat().st_size > 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["steps"] == 2 and result["seed"] == 1
    assert result["probe_random"] == random_acc and result["probe_pretrained"] == pretrained_acc

    # same seed: the same initialisation, so the same loss before pretraining; the world is reused
    assert main([*argv, "--seed", "1", "--workers", "0"]) == 0
    second = capsys.readouterr().out
    assert "reusing the synthetic world" in second
    assert _row(second, "reconstruction loss (val, fixed masks)")[0] == before
    # another seed: another initialisation
    assert main([*argv, "--seed", "2", "--workers", "0"]) == 0
    third = capsys.readouterr().out
    assert _row(third, "reconstruction loss (val, fixed masks)")[0] != before


def test_demo_takes_a_packaged_recipe_default_or_a_file(tmp_path: Path) -> None:
    from avpretrain.demo import _parse, _recipe
    from avpretrain.recipes import resolve_recipe

    world, run = tmp_path / "world", tmp_path / "run"
    default = _recipe(_parse([]), world, run)  # the default, pretrain/tiny_video
    model = default["model"]["init_args"]["model"]["init_args"]
    assert model["video_patch_size"] == 8 and model["contrastive_mode"] == "audio_teacher"
    assert default["data"]["init_args"]["train_urls"] == str(world / "train")
    copy = tmp_path / "mine.yaml"
    copy.write_text(resolve_recipe("pretrain/tiny_video").read_text())
    assert _recipe(_parse(["--recipe", str(copy)]), world, run) == default
    assert _recipe(_parse(["--recipe", "pretrain/tiny_video"]), world, run) == default
    tiny = _recipe(_parse(["--recipe", "pretrain/tiny"]), world, run)
    assert tiny["model"]["init_args"]["model"]["init_args"].get("video_patch_size") is None
