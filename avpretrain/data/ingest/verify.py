"""Checking that a shard left by an earlier ingest run holds what the plan says it should.

A rerun counts a shard as done only if it passes :func:`shard_problem`: a complete tar (every
member's data inside the file, the end-of-archive blocks present), whose keys are all planned for
that shard, every sample with its ``num_frames`` JPEG frames, its JSON and an audio member, and
as many samples as the run that wrote it logged. Anything else (a shard cut short by a full disk,
two runs writing one file, a file copied over by hand) is rewritten.
"""

from __future__ import annotations

import tarfile
from collections import defaultdict
from pathlib import Path

from avpretrain.data.schema import JSON_EXT, frame_ext

_BLOCK = tarfile.BLOCKSIZE


def shard_problem(path: Path, keys: set[str], frames: int, samples: int | None) -> str | None:
    """What is wrong with the finished shard ``path``, or None if it is sound.

    Args:
        path: the shard.
        keys: the sample keys the plan puts in this shard (clips skipped at decode time may be
            missing from it, so it may hold fewer).
        frames: JPEG frames every sample must have.
        samples: the sample count its writer logged, or None if it was never logged.
    """
    members: dict[str, set[str]] = defaultdict(set)
    try:
        size = path.stat().st_size
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if member.offset_data + member.size > size:
                    return f"member {member.name} is cut short"
                key, _, ext = member.name.partition(".")
                members[key].add(ext)
            end = tar.offset
        with path.open("rb") as f:
            f.seek(end)
            tail = f.read(2 * _BLOCK)
    except (tarfile.TarError, OSError) as err:
        return f"not a readable tar: {err}"
    if tail != bytes(2 * _BLOCK):
        return "the end-of-archive blocks are missing (the file was cut short)"
    stray = sorted(set(members) - keys)
    if stray:
        return f"{len(stray)} samples the plan does not put here (first: {stray[0]})"
    wanted = {frame_ext(i) for i in range(frames)} | {JSON_EXT}
    for key, exts in members.items():
        jpegs = {e for e in exts if e.endswith(".jpg")}
        if not wanted <= exts or len(jpegs) != frames or len(exts) != frames + 2:
            return f"sample {key} has members {sorted(exts)}, not {frames} frames, JSON and audio"
    if samples is not None and len(members) != samples:
        return f"{len(members)} samples, but its writer logged {samples}"
    return None
