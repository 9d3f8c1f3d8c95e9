"""Loading: shards into batches for pretraining and the downstream tasks.

``urls`` / ``tar_stream`` open shards, ``pipeline`` / ``loader`` build the webdataset pipeline,
``samples`` turns a raw sample into tensors (``audio``: fbank, ``video``: frames, ``augment``,
``worker_audio``, ``device_decode``), and ``datamodule`` (:class:`AVDataModule`) puts it together
for Lightning.
"""

from avpretrain.data.loading.audio import FbankConfig
from avpretrain.data.loading.datamodule import AVDataModule

__all__ = ["AVDataModule", "FbankConfig"]
