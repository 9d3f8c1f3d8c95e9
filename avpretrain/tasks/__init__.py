"""Downstream tasks: LightningModules that put a head on pretrained (or random) encoders."""
