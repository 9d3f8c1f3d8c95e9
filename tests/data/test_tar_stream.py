"""The streaming tar reader gives what tarfile (through webdataset) gives, and names damage."""

from __future__ import annotations

import io
import tarfile

import pytest
from webdataset.tariterators import tar_file_iterator

from avpretrain.data.loading.tar_stream import TarFormatError, expand_tar_streams, tar_members


def _tar(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        folder = tarfile.TarInfo("sub")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        members = {
            "a.json": b"{}",
            "a.f00.jpg": bytes(range(256)) * 3,
            "sub/b.pcm16": b"\x01\x02" * 700,
            "x" * 120 + ".long.json": b"long name",  # > 100 bytes: GNU L or pax path
            "dir/" * 30 + "c.json": b"prefixed",
            "__meta__": b"skipped like webdataset",
            "empty.txt": b"",
            "ünï.json": b"utf-8 name",
        }
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("a.link")
        link.type, link.linkname = tarfile.SYMTYPE, "a.json"
        tar.addfile(link)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_members_equal_webdatasets(fmt: int) -> None:
    if fmt == tarfile.USTAR_FORMAT:
        with pytest.raises(ValueError):  # ustar cannot hold the long name: skip that case
            _tar(fmt)
        return
    data = _tar(fmt)
    ours = list(tar_members(io.BytesIO(data)))
    theirs = [(m["fname"], m["data"]) for m in tar_file_iterator(io.BytesIO(data))]
    assert ours == theirs
    assert len(ours) == 7 and ("empty.txt", b"") in ours


def test_damage_is_named() -> None:
    data = _tar(tarfile.GNU_FORMAT)
    cut = data[: data.index(bytes(range(256))) + 100]
    with pytest.raises(TarFormatError, match=r"'a.f00.jpg' is cut short: 100 of 768 bytes"):
        list(tar_members(io.BytesIO(cut)))
    with pytest.raises(TarFormatError, match="checksum"):
        list(tar_members(io.BytesIO(b"not a tar file at all" * 30)))
    with pytest.raises(TarFormatError, match="inside a header"):
        list(tar_members(io.BytesIO(data[: 3 * 512 + 100])))  # into the third header


def test_expander_reports_a_bad_shard_and_goes_on() -> None:
    good = _tar(tarfile.GNU_FORMAT)
    errors: list[BaseException] = []
    shards = [
        {"url": "bad.tar", "stream": io.BytesIO(good[:700])},
        {"url": "good.tar", "stream": io.BytesIO(good)},
    ]
    items = list(expand_tar_streams(shards, lambda exn: errors.append(exn) or True))
    assert len(errors) == 1 and "inside a header" in str(errors[0])
    assert items[0] == {} and items[-1] == {}  # end markers close each shard's last sample
    assert [i["__url__"] for i in items[1:-1]] == ["good.tar"] * 7
