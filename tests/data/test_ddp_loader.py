"""Two CPU processes (torch.distributed, gloo) read one epoch each, as two DDP ranks would."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avpretrain.data.loading.audio import FbankConfig
from avpretrain.data.loading.datamodule import AVDataModule
from tests.data.tiny_shards import write_tiny_shards

WORLD = 2
COMMON = {"batch_size": 2, "num_workers": 0, "frame_size": 16, "shuffle_buffer": 4}
CASES = {
    "one_pass_even": ("even", {}),
    "one_pass_uneven": ("uneven", {}),
    "resampled_uneven": ("uneven", {"resampled": True, "epoch_samples": 16}),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, root: str, port: int) -> None:
    """One rank: read one epoch of each case; the per-rank batch counts are all-gathered."""
    # A forked child must not enter the parent's OpenMP pool (it can hang); DataLoader workers
    # do the same.
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        report = {}
        for name, (folder, kw) in CASES.items():
            dm = AVDataModule(
                train_urls=str(Path(root) / folder),
                fbank=FbankConfig(target_frames=16),
                **COMMON,
                **kw,
            )
            loader = dm.train_dataloader()
            keys = [batch["key"] for batch in loader]
            counts = [torch.zeros(1, dtype=torch.long) for _ in range(WORLD)]
            dist.all_gather(counts, torch.tensor([len(keys)]))
            report[name] = {
                "world": dm.world(),
                "len": len(loader),
                "keys": keys,
                "all_counts": [int(c) for c in counts],
            }
        (Path(root) / f"rank{rank}.json").write_text(json.dumps(report))
    finally:
        dist.destroy_process_group()


def test_two_ranks_read_disjoint_shards_with_equal_batch_counts(tmp_path: Path) -> None:
    write_tiny_shards(tmp_path / "even", [4, 4, 4, 4], num_frames=2, seconds=0.25, size=8)
    write_tiny_shards(tmp_path / "uneven", [1, 5, 11, 3], num_frames=2, seconds=0.25, size=8)
    # fork: the ranks start with this process's imports (spawn would spend ~10 s importing).
    mp.start_processes(
        _rank_main, args=(str(tmp_path), _free_port()), nprocs=WORLD, start_method="fork"
    )
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]

    for name in CASES:
        per_rank = [rep[name] for rep in reports]
        assert [r["world"] for r in per_rank] == [[0, WORLD], [1, WORLD]]
        counts = per_rank[0]["all_counts"]
        assert counts[0] == counts[1] == per_rank[0]["len"] == per_rank[1]["len"] > 0, name
        assert all(len(b) == 2 for r in per_rank for b in r["keys"])

    even = [{k for b in rep["one_pass_even"]["keys"] for k in b} for rep in reports]
    assert not even[0] & even[1]  # disjoint shards
    assert len(even[0] | even[1]) == 16  # every sample once: 8 per rank, 4 batches of 2
    assert reports[0]["one_pass_even"]["len"] == 4
    # resampled: 16 samples over 2 ranks of batch 2, whatever the shard sizes
    assert reports[0]["resampled_uneven"]["len"] == 16 // (WORLD * 2)
    assert reports[0]["resampled_uneven"]["keys"] != reports[1]["resampled_uneven"]["keys"]
