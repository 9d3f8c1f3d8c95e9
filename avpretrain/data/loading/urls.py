"""Turning a shard specification into a list of shard URLs, with sample counts where known.

Accepted forms (alone or mixed in a list)::

    /data/train/shard-000007.tar                  one local shard
    /data/train/shard-{000000..000099}.tar        brace pattern (braceexpand, as webdataset)
    /data/train  or  /data/train/index.json       a shard folder: the shards its index lists,
                                                  with their sample counts (see ``shards.py``);
                                                  a folder without an index: its ``*.tar`` files
    s3://bucket/train/shard-{000000..000099}.tar  object storage, read through fsspec (needs
                                                  the scheme's package, e.g. ``s3fs``, ``gcsfs``)
    s3://bucket/train/index.json  or  .../train/  a remote index, read through fsspec
    gs://..., http(s)://...                       webdataset's own openers (``gsutil cat``, curl)
    pipe:aws s3 cp s3://b/shard-{000..099}.tar -  any shell command writing the tar to stdout

Only an index gives sample counts; the loaders need them for an exact epoch length in
non-resampled mode and to default ``epoch_samples`` in resampled mode.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

import braceexpand
import fsspec

from avpretrain.data.shards import INDEX_NAME, read_index

ShardSpec = str | Path | Sequence[str | Path]


@dataclass(frozen=True)
class Shard:
    """One shard: where to read it and how many samples it holds (``None``: unknown)."""

    url: str
    samples: int | None = None


def url_scheme(url: str) -> str:
    """Scheme of a URL (``s3``, ``pipe``, ...); ``""`` for a local path."""
    if url.startswith("pipe:"):
        return "pipe"
    scheme = urlparse(url).scheme
    # A Windows drive letter parses as a one-letter scheme.
    return scheme if len(scheme) > 1 else ""


def _remote_index(url: str) -> list[Shard]:
    """Shards listed by an ``index.json`` in object storage; names resolve beside the index."""
    if url.endswith("/"):
        url += INDEX_NAME
    try:
        with fsspec.open(url, "rb") as f:
            index = json.loads(f.read())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"no shard index at {url}") from err
    base = url.rsplit("/", 1)[0]
    return [Shard(f"{base}/{s['name']}", int(s["samples"])) for s in index["shards"]]


def _local_folder(path: Path) -> list[Shard]:
    """Shards of a local folder: from its index if present, else its ``*.tar`` files."""
    if (path / INDEX_NAME).exists() or path.name == INDEX_NAME:
        index = read_index(path)
        return [Shard(s["url"], int(s["samples"])) for s in index["shards"]]
    tars = sorted(path.glob("*.tar"))
    if not tars:
        raise FileNotFoundError(f"{path}: no {INDEX_NAME} and no *.tar shards in this folder")
    return [Shard(str(t)) for t in tars]


def _expand_one(spec: str) -> list[Shard]:
    scheme = url_scheme(spec)
    if scheme not in ("", "file"):
        if scheme != "pipe" and (spec.endswith(".json") or spec.endswith("/")):
            return _remote_index(spec)
        return [Shard(u) for u in braceexpand.braceexpand(spec)]
    path = Path(spec.removeprefix("file://"))
    if path.is_dir() or path.suffix == ".json":
        return _local_folder(path)
    shards = [Shard(u) for u in braceexpand.braceexpand(str(path))]
    missing = [s.url for s in shards if not Path(s.url).exists()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(shards)} shards of {spec!r} do not exist, e.g. {missing[0]}"
        )
    return shards


def expand_urls(spec: ShardSpec) -> list[Shard]:
    """Expand a shard specification (see the module docstring) into shards, in order.

    Args:
        spec: a path or URL, or a list of them; each may be a brace pattern, a folder or an
            ``index.json``.

    Returns:
        The shards, concatenated in the order given.

    Raises:
        FileNotFoundError: a local shard, folder or index does not exist.
        ValueError: the specification expands to no shard at all.
    """
    specs = [spec] if isinstance(spec, str | Path) else list(spec)
    shards = [shard for one in specs for shard in _expand_one(str(one))]
    if not shards:
        raise ValueError(f"shard specification {spec!r} expands to no shards")
    return shards


def total_samples(shards: Sequence[Shard]) -> int | None:
    """Sum of the shards' sample counts, or ``None`` if any count is unknown."""
    if any(s.samples is None for s in shards):
        return None
    return sum(s.samples for s in shards)  # type: ignore[misc]


def open_url(url: str) -> IO[bytes]:
    """Open a shard for reading as a binary stream.

    Local paths, ``pipe:`` commands and the schemes webdataset's ``gopen`` knows (``gs`` via
    ``gsutil cat``, ``http(s)`` via curl, ...) go through ``gopen``; every other scheme
    (``s3``, ``gcs``, ``az``, ``memory``, ...) through ``fsspec.open``.
    """
    import webdataset as wds

    scheme = url_scheme(url)
    if scheme in ("", "file") or scheme in wds.gopen_schemes:
        return wds.gopen(url, "rb")
    return fsspec.open(url, "rb").open()
