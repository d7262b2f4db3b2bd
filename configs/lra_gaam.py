"""Gaussian Adaptive Attention (GAAM; Ioannides et al. 2024, arXiv:2401.11143) as the token mixer
on Long Range Arena.

  python -m experiments.train --config=configs/lra_gaam.py --workdir=runs/lra_gaam
  python -m experiments.train --config=configs/lra_gaam.py:smoke --workdir=/tmp/smoke

The mixer replaces the whole attention sublayer: each feature is re-weighted by a product of G
Gaussians of its value standardised over the real tokens, normalised over the tokens (no queries,
keys or projections). Hyper-parameters: num_heads=2 (the LRA Transformer's heads; each head a
slice of features with its own offsets and scales) and num_gaussians=4 (chosen: the paper does
not evaluate on LRA and its settings vary by modality). No attention dropout (the kind has none).
Published LRA results: none (the paper reports speech emotion, image and text classification).
The LRA per-model sizes (`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("gaam", arg, num_heads=2, num_gaussians=4)
