"""Ingest: a user's video files (folder, manifest or list) into ACAV-style webdataset shards.

``runner`` drives the run (``avpretrain ingest``); ``manifest`` reads the inputs, ``plan`` splits
them into shard jobs, ``decode`` / ``decode_tracks`` cut clips with PyAV, ``shard`` writes one
shard atomically, ``verify`` checks what was written, ``lock`` keeps two runs off one folder, and
``reencode`` rewrites existing shards' audio.
"""

from avpretrain.data.ingest.runner import ingest

__all__ = ["ingest"]
