"""avpretrain: self-supervised audio-visual pretraining with a dual ViT masked autoencoder."""

__version__ = "0.1.0"
