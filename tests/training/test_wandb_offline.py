"""The offline W&B run reader on a log framed by an independent LevelDB-style writer: records
split over 32 KiB blocks, zero-padded block ends, a chunk cut off by a run still writing."""

from __future__ import annotations

import json
import struct

from wandb.proto import wandb_internal_pb2

from avpretrain.training.wandb_offline import read_records, read_run_info

BLOCK, HEADER = 32768, 7


def _frame(payloads: list[bytes], zero_tail_after: int) -> bytes:
    """LevelDB log framing (FULL 1, FIRST 2, MIDDLE 3, LAST 4) after the 7-byte W&B header;
    after record ``zero_tail_after`` the rest of the block is zeros, as a writer may leave it."""
    out = bytearray(b":W&B" + struct.pack("<HB", 0xBEE1, 0))
    for n, payload in enumerate(payloads):
        rest, first = payload, True
        while True:
            left = BLOCK - len(out) % BLOCK
            if left < HEADER:
                out += bytes(left)
                continue
            chunk, rest = rest[: left - HEADER], rest[left - HEADER :]
            kind = (1 if not rest else 2) if first else (4 if not rest else 3)
            out += struct.pack("<IHB", 0, len(chunk), kind) + chunk
            first = False
            if not rest:
                break
        if n == zero_tail_after:
            out += bytes(BLOCK - len(out) % BLOCK)
    return bytes(out)


def _history(step: int) -> bytes:
    record = wandb_internal_pb2.Record()
    item = record.history.item.add()
    item.nested_key.append("train/loss")  # wandb >= 0.2x writes keys as nested_key
    item.value_json = json.dumps(1.0 / (step + 1))
    pad = record.history.item.add()
    pad.key = "pad"
    pad.value_json = json.dumps("x" * (step * 97 % 3000))  # sizes that cross block ends
    return record.SerializeToString()


def test_reads_every_record_across_blocks_padding_and_a_torn_tail(tmp_path):
    run = wandb_internal_pb2.Record()
    run.run.run_group, run.run.display_name = "g", "n"
    payloads = [run.SerializeToString()] + [_history(i) for i in range(60)]
    data = _frame(payloads, zero_tail_after=5)
    assert len(data) > 2 * BLOCK
    folder = tmp_path / "wandb" / "offline-run-1-abc"
    folder.mkdir(parents=True)
    # a last record cut off mid-chunk: the run was still writing it
    (folder / "run-abc.wandb").write_bytes(data + struct.pack("<IHB", 0, 500, 1) + b"x" * 20)
    history = read_records(tmp_path)["history"]
    assert [row["train/loss"] for row in history] == [1.0 / (i + 1) for i in range(60)]
    assert read_run_info(folder)["name"] == "n"
