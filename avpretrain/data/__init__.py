"""Shards, ingest, features, the synthetic world and the datamodules."""
