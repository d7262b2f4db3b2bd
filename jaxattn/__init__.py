"""jaxattn: attention mechanisms under one contract, the models built from them, one trainer."""
