"""Lightning-free model parts: ViT encoders, masking, losses, MAE decoders and the AV-MAE."""

from avpretrain.models.avmae import AVMAE, AVMAEOutput
from avpretrain.models.decoder import MAEDecoder
from avpretrain.models.losses import denormalize_prediction, info_nce, masked_mse
from avpretrain.models.masking import random_masking, structured_audio_masking
from avpretrain.models.vit import Block, ViTConfig, ViTEncoder

__all__ = [
    "AVMAE",
    "AVMAEOutput",
    "Block",
    "MAEDecoder",
    "ViTConfig",
    "ViTEncoder",
    "denormalize_prediction",
    "info_nce",
    "masked_mse",
    "random_masking",
    "structured_audio_masking",
]
