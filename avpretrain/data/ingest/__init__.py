"""Ingest: a user's video files (folder, manifest or list) into ACAV-style webdataset shards.

``runner`` drives the run (``avpretrain ingest``); ``manifest`` reads the inputs, ``plan`` splits
them into shard jobs, ``decode`` / ``decode_tracks`` cut clips with PyAV, ``shard`` writes one
shard atomically, ``verify`` checks what was written, ``lock`` keeps two runs off one folder, and
``reencode`` rewrites existing shards' audio.

``ingest`` is imported from ``runner`` on first use, so importing a light submodule (the
converters use ``manifest``) does not load the runner and PyAV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from avpretrain.data.ingest.runner import ingest

__all__ = ["ingest"]


def __getattr__(name: str) -> Any:
    """``ingest`` from :mod:`.runner`, imported when first asked for (PEP 562).

    Raises:
        AttributeError: for any other name.
    """
    if name == "ingest":
        from avpretrain.data.ingest.runner import ingest

        return ingest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
