"""AVDataModule: epochs, accelerator mode, device augmentations, resuming, Lightning."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from avpretrain.data.loading.audio import FbankConfig
from avpretrain.data.loading.datamodule import AVDataModule
from tests.data.tiny_shards import write_tiny_shards

SMALL = {"batch_size": 2, "num_workers": 0, "frame_size": 16, "shuffle_buffer": 4}


def small_dm(urls, **kw) -> AVDataModule:
    return AVDataModule(
        train_urls=str(urls), **{"fbank": FbankConfig(target_frames=32), **SMALL, **kw}
    )


def keys(loader) -> list[list[str]]:
    return [batch["key"] for batch in loader]


def test_resampled_epochs_have_fixed_length_and_new_draws(tmp_path: Path) -> None:
    write_tiny_shards(tmp_path, [1, 5, 3])
    dm = small_dm(tmp_path, resampled=True, epoch_samples=10)
    loader = dm.train_dataloader()
    assert len(loader) == 10 // 2
    first, second = keys(loader), keys(loader)
    assert len(first) == len(second) == 5 and all(len(b) == 2 for b in first + second)
    assert first != second
    again = small_dm(tmp_path, resampled=True, epoch_samples=10).train_dataloader()
    assert keys(again) == first  # seeded: the same run gives the same stream
    other_seed = small_dm(tmp_path, resampled=True, epoch_samples=10, seed=1).train_dataloader()
    assert keys(other_seed) != first


def test_one_pass_epoch_reads_every_full_batch_once(tmp_path: Path) -> None:
    write_tiny_shards(tmp_path, [3, 4, 5])
    loader = small_dm(tmp_path).train_dataloader()
    assert len(loader) == 12 // 2
    batches = keys(loader)
    flat = [k for b in batches for k in b]
    assert len(batches) == 6 and len(set(flat)) == 12
    assert keys(loader) != batches  # reshuffled next epoch


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_too_few_shards_for_ranks_and_workers(tmp_path: Path) -> None:
    write_tiny_shards(tmp_path, [2, 2, 2])
    dm = small_dm(tmp_path, num_workers=4)
    with pytest.raises(ValueError, match=r"3 shards.*world_size 1 x num_workers 4 = 4.*resampled"):
        dm.train_dataloader()
    assert len(small_dm(tmp_path, num_workers=4, resampled=True).train_dataloader()) == 3
    with pytest.raises(ValueError, match="mixup_alpha > 0 mixes labels"):
        AVDataModule(train_urls=str(tmp_path), mixup_alpha=1.0)


def test_eval_with_fewer_shards_than_workers_reads_each_sample_once(tmp_path: Path) -> None:
    write_tiny_shards(tmp_path, [5])
    dm = AVDataModule(val_urls=str(tmp_path), **{**SMALL, "num_workers": 2})
    dm.fbank = FbankConfig(target_frames=32)
    flat = [k for b in keys(dm.val_dataloader()) for k in b]
    assert sorted(flat) == [f"s0k{j}" for j in range(5)]


@pytest.mark.parametrize(
    "fbank",
    [
        FbankConfig(target_frames=96),  # 0.5 s gives 48 frames: padded
        FbankConfig(target_frames=20),  # cut
        FbankConfig.paper(),  # 8 kHz, resized to 128 frames
    ],
    ids=["pad", "cut", "paper"],
)
def test_cpu_fbank_and_accelerator_mode_agree(tmp_path: Path, fbank: FbankConfig) -> None:
    write_tiny_shards(tmp_path, [3], seconds=0.5)
    cpu = AVDataModule(val_urls=str(tmp_path), fbank=fbank, **SMALL)
    device = AVDataModule(val_urls=str(tmp_path), fbank=fbank, audio_on_device=True, **SMALL)
    for a, b in zip(cpu.val_dataloader(), device.val_dataloader(), strict=True):
        assert "waveform" in b and "audio" not in b
        b = device.on_after_batch_transfer(b, 0)
        assert set(a) == set(b) and a["key"] == b["key"]
        assert b["audio"].shape == a["audio"].shape == (len(a["key"]), 1, 128, fbank.output_frames)
        # float32 sums in another order (per clip vs batched, thread-count dependent): a loaded
        # 2-core machine measured 1.3e-4 on one of 32768 values, which are of order 1
        torch.testing.assert_close(b["audio"], a["audio"], atol=5e-4, rtol=0)


def test_device_augmentations_only_in_training(tmp_path: Path) -> None:
    write_tiny_shards(tmp_path, [4])
    dm = small_dm(tmp_path, num_classes=4, mixup_alpha=1.0, batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    clone = {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()}
    assert dm.device_transform(dict(clone), train=False)["audio"].equal(batch["audio"])
    mixed = dm.device_transform(dict(clone), train=True)
    for name in ("audio", "video", "labels"):  # convex mix with a permutation keeps batch sums
        assert not mixed[name].equal(batch[name])
        torch.testing.assert_close(mixed[name].sum(0), batch[name].sum(0), atol=1e-4, rtol=1e-4)
    masked = small_dm(tmp_path, spec_freq_mask=40, spec_time_mask=10, batch_size=4)
    batch = next(iter(masked.train_dataloader()))
    out = masked.device_transform({**batch, "audio": batch["audio"].clone()}, train=True)
    changed = out["audio"] != batch["audio"]
    pad = (0.0 - masked.fbank.mean) / (2 * masked.fbank.std)  # fbank of a zero log energy
    assert changed.any() and torch.allclose(out["audio"][changed], torch.tensor(pad))


def test_resume_continues_the_epoch_with_new_draws(tmp_path: Path) -> None:
    write_tiny_shards(tmp_path, [4, 4, 4])
    dm = small_dm(tmp_path, resampled=True, epoch_samples=12)
    loader = dm.train_dataloader()
    it = iter(loader)
    seen = [next(it)["key"] for _ in range(2)]
    state = dm.state_dict()
    assert state == {"seed": 0, "epoch": 0, "batches": 2}
    rest = [b["key"] for b in it]
    assert len(seen + rest) == 6 and dm.state_dict()["epoch"] == 1

    resumed = small_dm(tmp_path, resampled=True, epoch_samples=12)
    resumed.load_state_dict(state)
    loader = resumed.train_dataloader()
    assert len(loader) == 6  # Lightning counts the consumed batches itself
    tail = keys(loader)
    assert len(tail) == 4 and tail != rest
    assert resumed.state_dict() == {"seed": 0, "epoch": 1, "batches": 0}
    assert len(keys(loader)) == 6


class _Recorder(L.LightningModule):
    """Records the batches Lightning hands to the steps."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.train_batches: list[dict] = []
        self.val_batches: list[dict] = []

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        self.train_batches.append(batch)
        return self.weight * batch["audio"].mean()

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.val_batches.append(batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_fit_uses_the_datamodule(tmp_path: Path) -> None:
    write_tiny_shards(tmp_path / "train", [3, 3])
    write_tiny_shards(tmp_path / "val", [3])
    dm = small_dm(
        tmp_path / "train", val_urls=str(tmp_path / "val"), audio_on_device=True, resampled=True
    )
    model = _Recorder()
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule=dm)
    assert len(model.train_batches) == 2 * (6 // 2)  # epoch_samples defaults to the index total
    assert len(model.val_batches) == 2 * 2  # 3 samples: a full and an incomplete batch
    batch = model.train_batches[0]
    assert "waveform" not in batch and batch["audio"].shape == (2, 1, 128, 32)
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert ckpt["AVDataModule"] == {"seed": 0, "epoch": 2, "batches": 0}
    assert dm.skipped == {"train": 0, "val": 0, "test": 0}


def test_init_signature_is_a_cli_schema() -> None:
    """LightningCLI builds the datamodule from its typed, documented __init__ (jsonargparse)."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(AVDataModule, "data")
    args = ["--data.train_urls=s3://b/x-{0..9}.tar", "--data.fbank.target_frames=512"]
    data = parser.instantiate(parser.parse_args([*args, "--data.resampled=true"])).data
    assert data.fbank.target_frames == 512 and data.fbank.num_mel_bins == 128 and data.resampled
    assert "samples per epoch over all ranks" in parser.format_help()
