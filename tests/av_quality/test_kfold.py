"""K-fold driver: fold urls, manifest split, synthetic folds, and 2 folds end to end."""

import json
from dataclasses import replace

import numpy as np
import pytest
import webdataset as wds
import yaml

from avpretrain.av_quality.kfold import (
    fold_metrics,
    fold_urls,
    main,
    split_manifest,
    summary_markdown,
)
from avpretrain.data.synthetic.av_quality_world import main as synth_main
from avpretrain.data.synthetic.av_quality_world import write_quality_folds
from avpretrain.metrics.av_quality import METRIC_NAMES
from tests.conftest import TINY_WORLD
from tests.tasks.helpers import task_recipe, write

FOLD_WORLD = replace(TINY_WORLD, clips=12, num_frames=8, shard_size=4)


@pytest.fixture(scope="module")
def fold_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality_folds")
    summary = write_quality_folds(out, FOLD_WORLD, folds=2)
    return out, summary


def test_fold_urls():
    assert fold_urls(["a", "b", "c"], 1) == (["a", "c"], "b")
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_urls(["a"], 0)
    with pytest.raises(ValueError, match="distinct"):
        fold_urls(["a", "a"], 0)
    with pytest.raises(ValueError, match="fold 3 outside 0..2"):
        fold_urls(["a", "b", "c"], 3)


def test_split_manifest_exact_rows_and_errors(tmp_path):
    rows = [{"path": f"v{i}.mp4", "annotations": {"fold": f}} for i, f in enumerate([1, 0, 1])]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    paths = split_manifest(manifest, tmp_path / "out")
    assert [p.name for p in paths] == ["m.fold0.jsonl", "m.fold1.jsonl"]
    got = [[json.loads(line)["path"] for line in p.read_text().splitlines()] for p in paths]
    assert got == [["v1.mp4"], ["v0.mp4", "v2.mp4"]]
    manifest.write_text(json.dumps({"path": "x.mp4", "annotations": {}}) + "\n")
    with pytest.raises(ValueError, match=r"m.jsonl:1: annotations.fold is None"):
        split_manifest(manifest, tmp_path / "out")
    manifest.write_text(json.dumps({"path": "x.mp4", "annotations": {"fold": 1}}) + "\n")
    with pytest.raises(ValueError, match=r"fold\(s\) \[0\] have no rows"):
        split_manifest(manifest, tmp_path / "out")


def test_fold_metrics_parses_logged_keys():
    logged = {f"val/overall/{m}": i for i, m in enumerate(METRIC_NAMES)}
    logged.update({"val/loss": 3.0, "train/loss": 1.0})
    assert fold_metrics(logged) == {"overall": {m: float(i) for i, m in enumerate(METRIC_NAMES)}}
    with pytest.raises(ValueError, match="lacks logged metric"):
        fold_metrics({"val/video/SRCC": 0.5})


def test_synthetic_folds_partition_the_clips(fold_world):
    out, summary = fold_world
    assert summary["folds"] == [6, 6]
    keys = []
    for k in range(2):
        index = json.loads((out / f"fold{k}" / "index.json").read_text())
        assert index["total"] == 6 and index["fold"] == k and index["folds"] == 2
        urls = sorted(str(p) for p in (out / f"fold{k}").glob("*.tar"))
        for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
            assert json.loads(sample["json"])["annotations"]["fold"] == k
            keys.append(sample["__key__"])
    assert len(keys) == len(set(keys)) == FOLD_WORLD.clips  # disjoint, and all clips


def test_two_folds_end_to_end(fold_world, tmp_path):
    out, _ = fold_world
    cfg = task_recipe("av_quality/synth.yaml", out, tmp_path / "unused")
    cfg["trainer"]["max_epochs"] = 1
    cfg["data"]["init_args"]["batch_size"] = 3  # training drops a last partial batch
    recipe = write(cfg, tmp_path / "recipe.yaml")
    folds = [str(out / "fold0"), str(out / "fold1")]
    runs = tmp_path / "kfold"
    argv = ["run", "--config", str(recipe), "--folds", *folds, "--out", str(runs)]
    overrides = ["--model.init_args.inputs", "video", "--data.init_args.num_frames_per_clip", "4"]
    # validate once per fold, after fit (the driver's own pass), to keep the test fast
    overrides += ["--trainer.num_sanity_val_steps", "0", "--trainer.check_val_every_n_epoch", "2"]
    assert main([*argv, *overrides]) == 0
    report = json.loads((runs / "fold_summary.json").read_text())
    assert [f["val"] for f in report["folds"]] == folds
    assert report["folds"][0]["train"] == [folds[1]]
    assert [f["steps"] for f in report["folds"]] == [2, 2]  # 6 clips, batch 3, one epoch
    fold0 = yaml.safe_load((runs / "fold0" / "recipe.yaml").read_text())["data"]["init_args"]
    assert (fold0["train_urls"], fold0["val_urls"]) == ([folds[1]], folds[0])
    assert report["overrides"] == overrides
    assert set(report["summary"]) == {"overall", "video", "audio"}
    for target, summary in report["summary"].items():
        for metric in METRIC_NAMES:
            values = [f["metrics"][target][metric] for f in report["folds"]]
            assert summary[f"{metric}_mean"] == pytest.approx(np.mean(values))
            assert summary[f"{metric}_std"] == pytest.approx(np.std(values))
    markdown = (runs / "fold_summary.md").read_text()
    assert markdown == summary_markdown(report)
    assert "## overall" in markdown and markdown.count("| mean |") == 3


def test_main_reports_bad_input(tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"path": "x.mp4"}\n')
    assert main(["split", str(manifest), "--out", str(tmp_path)]) == 2
    assert "annotations.fold" in capsys.readouterr().err
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}")
    assert main(["run", "--config", str(recipe), "--folds", "a", "--out", str(tmp_path)]) == 2
    assert "at least 2 folds" in capsys.readouterr().err


def test_synth_quality_cli_writes_folds(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--clips", "4", "--seconds", "1", "--frames", "2"]
    assert synth_main([*argv, "--frame-size", "16", "--folds", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["folds"] == [2, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fold0", "fold1"]
    assert synth_main([*argv, "--frame-size", "16", "--folds", "5"]) == 2
    assert "4 groups cannot fill 5 folds" in capsys.readouterr().err
