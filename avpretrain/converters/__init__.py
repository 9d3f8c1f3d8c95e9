"""Converters from the official benchmark annotation files to ``avpretrain ingest`` manifests.

One module per benchmark, each with a ``main(argv)`` subcommand ``avpretrain convert-<name>``:
``llp``, ``music-avqa``, ``yt-ntu-avq``, ``vggsound`` (and its Music / Instruments subsets),
``audioset``, ``vggss`` (VGG-SS JSON, Flickr-SoundNet XML). The manifest rows carry the task
labels in ``annotations``, which ingest copies into each clip's JSON. Two write shards directly,
because their inputs are not videos or carry members ingest cannot add: ``vggss-pairs`` (the
released test frames and audio of EZ-VSL) and ``avsbench`` (frames with their mask PNGs).
"""
