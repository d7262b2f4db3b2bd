"""Flax modules shared by every model: attention, MLP, blocks, embeddings."""
