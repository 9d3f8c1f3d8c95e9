"""Data: the shard format at the top, and three layers that read or write it.

- ``schema``, ``shards``, ``audio_codec``: the webdataset sample format every layer shares
  (members, JSON fields, the audio codec, shard indexes); ``folds`` (grouped k-fold
  assignment) and ``tables`` (strict CSV reading), shared by the quality tools and converters.
- :mod:`avpretrain.data.ingest`: the user's video files -> shards (probe, decode, write, verify).
- :mod:`avpretrain.data.synthetic`: the synthetic world, written in the same format.
- :mod:`avpretrain.data.loading`: shards -> training batches (webdataset pipeline, features,
  augmentation, the Lightning datamodule).
"""
