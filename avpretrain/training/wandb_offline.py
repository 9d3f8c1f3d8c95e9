"""Reading an offline W&B run back: the logged history, without network or a W&B account.

An offline run keeps everything in ``run-<id>.wandb``, a LevelDB-style log of protobuf
``Record`` messages (7-byte file header, 32 KiB blocks, each chunk with a 7-byte header of
CRC-32C, length and type). wandb's own Python reader for it was dropped when its core moved
to Go, so this small reader lets tests and ablation reports check what a run logged. As
LevelDB's reader does, a zero header skips the rest of its block (a zero-filled block end does
not end the log), and a last chunk cut off by a run still writing is left out.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

_BLOCK = 32768
_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> list[bytes]:
    out, pending, pos = [], b"", _HEADER
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0 or length > left - _HEADER:
            # zero padding (LevelDB's zero type) or no chunk: the block's records end here
            pos += left
            continue
        if pos + _HEADER + length > len(data):
            break  # a chunk still being written
        pos += _HEADER
        chunk = data[pos : pos + length]
        pos += length
        if kind == _FULL:
            out.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            out.append(pending + chunk)
    return out


def run_file(run_dir: str | Path) -> Path:
    """The ``run-*.wandb`` file of an offline run folder (or of the newest run under ``wandb/``)."""
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("run-*.wandb")) or sorted(
        run_dir.glob("**/offline-run-*/run-*.wandb"), key=lambda p: p.stat().st_mtime
    )
    if not files:
        raise FileNotFoundError(f"no offline W&B run (run-*.wandb) under {run_dir}")
    return files[-1]


def read_records(run_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """History rows and config of an offline run: ``{"history": [...], "config": [...]}``."""
    data = run_file(run_dir).read_bytes()
    out: dict[str, list[dict[str, Any]]] = {"history": [], "config": []}
    for payload in _payloads(data):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = record.history.item
            out["history"].append({_key(i): json.loads(i.value_json) for i in items})
        elif kind == "config":
            items = record.config.update
            out["config"].append({_key(i): json.loads(i.value_json) for i in items})
    return out


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    """Group, display name, initial config and final summary of an offline run.

    ``wandb.init(config=...)``, the group and the name live in the run record itself (not in the
    config updates :func:`read_records` lists); the summary records hold the final metrics.

    Returns:
        ``{"group": str, "name": str, "config": {...}, "summary": {...}}``.
    """
    info: dict[str, Any] = {"summary": {}, "config": {}}
    for payload in _payloads(run_file(run_dir).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            info.update(group=record.run.run_group, name=record.run.display_name)
            for item in record.run.config.update:
                info["config"][_key(item)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                info["summary"][_key(item)] = json.loads(item.value_json)
    return info


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)
