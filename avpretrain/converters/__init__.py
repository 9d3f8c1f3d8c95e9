"""Converters from the official benchmark annotation files to ``avpretrain ingest`` manifests.

One module per benchmark, each a ``convert(...)`` function and a ``main(argv)`` subcommand:
``avpretrain convert-llp`` (:mod:`avpretrain.converters.llp`) and ``avpretrain convert-music-avqa``
(:mod:`avpretrain.converters.music_avqa`). The manifest rows carry the task labels in
``annotations``, which ingest copies into each clip's JSON.
"""
