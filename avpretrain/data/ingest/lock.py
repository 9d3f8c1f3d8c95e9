"""An exclusive lock on an ingest output folder, so that two runs never write into one ``--out``.

The lock is ``fcntl.flock`` on ``<out>/ingest.lock``, held for the whole run: the kernel drops it
when the holder exits, even by ``SIGKILL``, so a stale lock file never blocks a rerun. The file
names the holder (pid, host, start time) for the message that refuses a second run. ``flock``
locks are reliable on local file systems; on network file systems that ignore them (some NFS
setups) two runs on different hosts are not kept apart.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

LOCK_NAME = "ingest.lock"


class OutputBusy(RuntimeError):
    """Another ingest holds the output folder's lock."""


class OutputLock:
    """Context manager holding the exclusive lock of an ingest output folder.

    Args:
        out: the output folder (created if missing).

    Raises:
        OutputBusy: on entry, when another process holds the lock (refused at once, no waiting).
    """

    def __init__(self, out: str | Path) -> None:
        self.path = Path(out) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd, self.path)
            os.close(fd)
            raise OutputBusy(
                f"{self.path.parent} is being written by another ingest ({holder}); wait for it "
                "to finish, or use another --out"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock; the file stays, naming the last holder
            self._fd = None


def _read_holder(fd: int, path: Path) -> str:
    """The holder named in the lock file, as text for a message."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        text = f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown: the lock file names nobody yet"
    if holder["host"] == socket.gethostname() and not _alive(holder["pid"]):
        text += (
            "; that process has exited, but processes it started still hold the lock "
            f"(`fuser -v {path}` lists them)"
        )
    return text


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
