"""Writing shards atomically, the shard index that lists them, and reading a shard back raw.

A shard is written to ``<name>.tmp`` and renamed when complete, so a killed writer never leaves a
truncated ``.tar`` that looks finished; a rerun sees which shards exist and skips them. The index
(``index.json`` beside the shards) lists every shard with its sample count::

    {"shards": [{"name": "shard-000000.tar", "samples": 64}, ...], "total": 64}
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import webdataset as wds
from webdataset.tariterators import group_by_keys, tar_file_expander

INDEX_NAME = "index.json"


def shard_name(prefix: str, index: int) -> str:
    """File name of shard ``index``: ``<prefix>-000042.tar``."""
    return f"{prefix}-{index:06d}.tar"


def write_shard(path: str | Path, samples: Iterable[dict[str, Any]]) -> int:
    """Write samples to one tar shard atomically; return how many were written.

    Args:
        path: final shard path; the data goes to ``path.tmp`` first and is renamed at the end.
        samples: webdataset sample dicts (``__key__`` plus encoded members).

    Raises:
        OSError: the write failed (e.g. a full disk); ``path.tmp`` is removed first.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    try:
        # an integer mtime avoids a PAX header per member: smaller, faster to read, reproducible
        with wds.TarWriter(str(tmp), mtime=0) as sink:
            for sample in samples:
                sink.write(sample)
                count += 1
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write (a full disk) leaves nothing behind
        raise
    return count


def count_samples(path: str | Path) -> int:
    """Number of samples (distinct keys) in a finished shard, read from its tar headers."""
    import tarfile

    keys = set()
    with tarfile.open(path) as tar:
        for member in tar:
            if member.isfile():
                keys.add(member.name.split("/")[-1].split(".", 1)[0])
    return len(keys)


def write_index(directory: str | Path, counts: dict[str, int] | None = None, **extra: Any) -> Path:
    """Write ``index.json`` listing every finished ``*.tar`` in ``directory``.

    Args:
        directory: the shard folder.
        counts: known sample counts by shard name; shards missing here are counted from their tar.
        extra: additional top-level fields (e.g. the ingest summary).
    """
    directory = Path(directory)
    counts = dict(counts or {})
    shards: list[dict[str, Any]] = []
    for tar in sorted(directory.glob("*.tar")):
        n = counts.get(tar.name)
        shards.append({"name": tar.name, "samples": n if n is not None else count_samples(tar)})
    index = {"shards": shards, "total": sum(s["samples"] for s in shards), **extra}
    out = directory / INDEX_NAME
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, out)
    return out


def read_index(path: str | Path) -> dict[str, Any]:
    """Read an index; ``path`` is the ``index.json`` file or the folder holding it.

    Returns the index with each shard's ``url`` (its absolute path) added.
    """
    path = Path(path)
    if path.is_dir():
        path = path / INDEX_NAME
    if not path.exists():
        raise FileNotFoundError(f"no shard index at {path}; run `avpretrain ingest` or `synth`")
    index = json.loads(path.read_text())
    for shard in index["shards"]:
        shard["url"] = str(path.parent / shard["name"])
    return index


def read_raw_samples(path: str | Path) -> Iterator[dict[str, Any]]:
    """Raw samples of one tar shard (``__key__`` plus bytes by extension), in stored order.

    Raises:
        ValueError: naming the shard, when it is not a readable tar.
    """
    with open(path, "rb") as stream:
        files = tar_file_expander([{"url": str(path), "stream": stream}], wds.reraise_exception)
        try:
            for sample in group_by_keys(files, handler=wds.reraise_exception):
                yield {k: v for k, v in sample.items() if k == "__key__" or not k.startswith("__")}
        except tarfile.TarError as err:
            raise ValueError(f"{path}: not a readable tar shard: {err}") from err
