"""The packaged recipes: names, the resolver, ``avpretrain recipes``, and the wheel's contents."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from avpretrain.ablation.grid import load_grid
from avpretrain.cli import main
from avpretrain.lightning_cli import resolve_config_args
from avpretrain.recipes import RecipeNotFoundError, recipe_names, resolve_recipe

ROOT = Path(__file__).resolve().parents[2]


def repo_recipes() -> dict[str, Path]:
    """The repository's recipe files by packaged name, found independently of the package."""
    out = {
        str(p.relative_to(ROOT / "configs").with_suffix("")): p
        for p in ROOT.glob("configs/**/*.yaml")
    }
    out.update({str(p.relative_to(ROOT).with_suffix("")): p for p in ROOT.glob("tasks/**/*.yaml")})
    return out


def test_every_repository_recipe_has_a_name():
    assert sorted(recipe_names()) == sorted(repo_recipes())
    assert {"pretrain/tiny", "ablate/tiny", "tasks/classification/synth_linear"} <= set(
        recipe_names()
    )


@pytest.mark.parametrize(
    "name",
    ["pretrain/tiny", "pretrain/tiny.yaml", "configs/pretrain/tiny.yaml", "configs/pretrain/tiny"],
)
def test_name_forms_resolve_to_the_same_file(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the checkout: only the package can answer
    assert resolve_recipe(name).read_bytes() == (ROOT / "configs/pretrain/tiny.yaml").read_bytes()


def test_an_existing_path_wins_over_a_packaged_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain/tiny.yaml").write_text("mine: 1\n")
    assert resolve_recipe("pretrain/tiny.yaml") == Path("pretrain/tiny.yaml")
    assert resolve_recipe("pretrain/tiny").read_text() != "mine: 1\n"  # no file of that name


def test_unknown_recipe_names_the_nearest():
    with pytest.raises(RecipeNotFoundError, match="did you mean tasks/retrieval/synth"):
        resolve_recipe("tasks/retrieval/synht")


def test_config_flags_resolve_in_every_spelling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny = str(resolve_recipe("pretrain/tiny"))
    linear = str(resolve_recipe("tasks/classification/synth_linear"))
    args = ["fit", "--config", "pretrain/tiny", "-c", "tasks/classification/synth_linear"]
    assert resolve_config_args(args) == ["fit", "--config", tiny, "-c", linear]
    assert resolve_config_args(["fit", "--config=pretrain/tiny", "--trainer.max_steps", "3"]) == [
        "fit",
        f"--config={tiny}",
        "--trainer.max_steps",
        "3",
    ]


def test_fit_takes_a_recipe_name_outside_the_checkout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", "tasks/classification/synth_linear", "--print_config"])
    assert done.value.code == 0
    assert "avpretrain.tasks.classification" in capsys.readouterr().out


def test_fit_with_an_unknown_recipe_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", "pretrain/huge"]) == 2
    assert "recipe 'pretrain/huge'" in capsys.readouterr().err


def test_recipes_lists_and_copies(tmp_path, capsys):
    assert main(["recipes"]) == 0
    listing = capsys.readouterr().out
    assert f"{len(repo_recipes())} recipes" in listing and "tasks/parsing/llp" in listing
    assert main(["recipes", "--copy", "tasks/retrieval/synth", str(tmp_path)]) == 0
    copied = tmp_path / "synth.yaml"
    assert copied.read_bytes() == (ROOT / "tasks/retrieval/synth.yaml").read_bytes()
    assert main(["recipes", "--copy", "pretrain/tiny", str(copied)]) == 2  # no silent overwrite
    assert "--force" in capsys.readouterr().err
    assert main(["recipes", "--copy", "pretrain/tiny", str(copied), "--force"]) == 0
    assert copied.read_bytes() == (ROOT / "configs/pretrain/tiny.yaml").read_bytes()


def test_grid_and_its_recipes_load_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = load_grid("ablate/tiny")
    assert grid.pretrain.recipe.read_bytes() == (ROOT / "configs/pretrain/tiny.yaml").read_bytes()
    assert [p.recipe.name for p in grid.probes] == ["synth_linear.yaml", "synth.yaml"]


def test_wheel_carries_every_recipe(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        check=True,
        cwd=ROOT,
    )
    (wheel,) = tmp_path.glob("avpretrain-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name, path in repo_recipes().items():
        inside = f"avpretrain/recipes/{'' if name.startswith('tasks/') else 'configs/'}{name}.yaml"
        assert inside in names, f"{path} missing from the wheel"
    assert {"avpretrain/recipes/__init__.py", "avpretrain/tasks/__init__.py"} <= names
    assert "avpretrain/recipes/tasks/retrieval/README.md" in names


def test_tiny_video_recipe_is_the_tiny_one_with_video_patches_and_distillation(
    tmp_path, monkeypatch
):
    from avpretrain.lightning_cli import run_lightning_cli

    monkeypatch.chdir(tmp_path)
    models = {}
    for name in ("pretrain/tiny", "pretrain/tiny_video"):
        cli = run_lightning_cli(["--config", name, "--trainer.logger", "false"], run=False)
        models[name] = cli.model.model
    tiny, video = models["pretrain/tiny"], models["pretrain/tiny_video"]
    assert video.video_encoder.grid_size == (8, 8) and tiny.video_encoder.grid_size == (4, 4)
    assert video.contrastive_mode == "audio_teacher" and tiny.contrastive_mode == "symmetric"
    assert video.audio_encoder.grid_size == tiny.audio_encoder.grid_size
    changed = ("video_patch_size", "contrastive_mode", "contrastive_weight", "contrastive_tau")
    same = {k: v for k, v in tiny.config.items() if k not in changed}
    assert same == {k: video.config[k] for k in same}
