"""Dense frame sampling (consecutive stored frames) for quality assessment."""

from dataclasses import replace

import pytest
import torch

from avpretrain.data.loading.audio import FbankConfig
from avpretrain.data.loading.datamodule import AVDataModule
from avpretrain.data.loading.samples import choose_frames
from avpretrain.data.synthetic.world import write_world
from tests.conftest import TINY_WORLD


def test_dense_eval_is_centred_and_consecutive():
    assert choose_frames(16, 8, train=False, sampling="dense") == list(range(4, 12))
    assert choose_frames(9, 4, train=False, sampling="dense") == [2, 3, 4, 5]  # span 5 // 2
    assert choose_frames(4, 4, train=False, sampling="dense") == [0, 1, 2, 3]


def test_dense_train_starts_anywhere_and_stays_consecutive():
    g = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(200):
        idx = choose_frames(10, 4, train=True, generator=g, sampling="dense")
        assert idx == list(range(idx[0], idx[0] + 4))
        starts.add(idx[0])
    assert starts == set(range(7))  # every start 0..10-4 is drawn


def test_uniform_skips_held_frames_that_dense_keeps():
    # one frame per segment of 4 lands on 2, 6, 10, 14: a stutter holding 4 frames looks fluent
    assert choose_frames(16, 4, train=False) == [2, 6, 10, 14]
    assert choose_frames(16, 4, train=False, sampling="dense") == [6, 7, 8, 9]


def test_dense_errors():
    with pytest.raises(ValueError, match="at least 8 stored frames, got 4"):
        choose_frames(4, 8, train=False, sampling="dense")
    with pytest.raises(ValueError, match="frame sampling must be one of"):
        choose_frames(4, 2, train=False, sampling="random")
    with pytest.raises(ValueError, match="frame_sampling must be one of"):
        AVDataModule(frame_sampling="strided")


def _indices(sample, meta, opts):
    return {"idx": torch.tensor(sample["__frame_indices__"])}


def test_datamodule_dense_batches(tmp_path):
    world = replace(TINY_WORLD, clips=4, val_clips=2, num_frames=6)
    write_world(tmp_path, world)
    dm = AVDataModule(
        train_urls=str(tmp_path / "train"),
        val_urls=str(tmp_path / "val"),
        batch_size=2,
        num_workers=0,
        frame_size=32,
        num_frames_per_clip=3,
        frame_sampling="dense",
        targets=_indices,
        fbank=FbankConfig(target_frames=64),
    )
    dm.setup("fit")
    (val,) = list(dm.val_dataloader())
    assert val["video"].shape == (2, 3, 3, 32, 32)
    assert val["idx"].tolist() == [[1, 2, 3], [1, 2, 3]]
    for batch in dm.train_dataloader():
        for idx in batch["idx"].tolist():
            assert idx == list(range(idx[0], idx[0] + 3)) and 0 <= idx[0] <= 3
