"""What ``avpretrain fit`` prints besides its own lines: no framework advertising, no warnings
caused by how we call LightningCLI or the W&B logger."""

from __future__ import annotations

import logging
import sys
import warnings

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger

from avpretrain.lightning_cli import _NoAdvertising, _quiet_framework, run_lightning_cli


def test_lightningcli_reads_the_command_line_as_intended(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["avpretrain", "demo", "--minutes", "1"])  # as under the demo
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = run_lightning_cli(
            ["--config", "pretrain/tiny", "--trainer.logger", "false"], run=False
        )
    assert not [w for w in caught if "args parameter" in str(w.message)]
    assert cli.trainer.max_steps > 0  # the recipe was parsed from the rewritten command line
    assert sys.argv == ["avpretrain", "demo", "--minutes", "1"]  # and sys.argv restored


def test_wandb_logger_gets_no_anonymous_setting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cli = run_lightning_cli(
        ["--config", "pretrain/tiny", "--trainer.logger.init_args.save_dir", str(tmp_path)],
        run=False,
    )
    (logger,) = cli.trainer.loggers
    assert type(logger).__name__ == "WandbLogger"
    assert "anonymous" not in logger._wandb_init  # wandb warns on any value given, None included


def _tips(caplog, tmp_path) -> list[str]:
    with caplog.at_level(logging.INFO):
        Trainer(logger=CSVLogger(tmp_path), enable_checkpointing=False, enable_progress_bar=False)
    return [r.getMessage() for r in caplog.records if "Tip" in r.getMessage()]


def test_lightning_advertising_is_dropped(caplog, tmp_path):
    _quiet_framework()
    assert _tips(caplog, tmp_path) == []
    # the same Trainer without the filter advertises: the check above can fail
    loggers = [
        logging.getLogger(f"lightning.{p}.utilities.rank_zero") for p in ("pytorch", "fabric")
    ]
    saved = [list(lg.filters) for lg in loggers]
    for lg in loggers:
        lg.filters = [f for f in lg.filters if not isinstance(f, _NoAdvertising)]
    try:
        caplog.clear()
        assert any("litlogger" in tip for tip in _tips(caplog, tmp_path))
    finally:
        for lg, filters in zip(loggers, saved, strict=True):
            lg.filters = filters


@pytest.mark.parametrize("flag", ["--config", "-c"])
def test_unknown_recipe_fails_before_lightning(flag):
    with pytest.raises(FileNotFoundError, match="no packaged recipe"):
        run_lightning_cli(["fit", flag, "pretrain/none"])
