"""YOSO (Zeng et al. 2021, arXiv:2111.09714) on Long Range Arena.

  python -m experiments.train --config=configs/lra_yoso.py --workdir=runs/lra_yoso
  python -m experiments.train --config=configs/lra_yoso.py:smoke --workdir=/tmp/smoke

LSH Bernoulli sampling with m = 32 hash rounds of τ = 8 bits (hash planes redrawn every training
step from the layer's rng, fixed at evaluation). The paper's LRA runs (mlpen/YOSO, LRA configs)
use YOSO with several hash counts and a depthwise convolution on V; the convolution is not
implemented here and these values are this repository's reading of the paper's "YOSO-32"
setting, not checked against the authors' config files. Published LRA results: the YOSO paper
reports LRA accuracies for YOSO variants (its Table; verify the numbers against the paper before
citing; not reproduced here).
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("yoso", arg, num_hashes=32, hash_bits=8)
