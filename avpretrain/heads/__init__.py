"""Downstream heads: small ``nn.Module``s that sit on the encoders' tokens or embeddings."""
