"""XCiT's cross-covariance attention (El-Nouby et al. 2021, arXiv:2106.09681) on Long Range Arena.

  python -m experiments.train --config=configs/lra_xca.py --workdir=runs/lra_xca
  python -m experiments.train --config=configs/lra_xca.py:smoke --workdir=/tmp/smoke

XCA attends over the H channels of each head (an H×H map from the token-normalised q and k, with a
learned temperature per head, init 1.0), so it needs no token grid and runs on every LRA task;
padded tokens are zeroed before the normalisation (exact). No hyper-parameters. Published LRA
results: none (XCiT is evaluated on images in the paper; it is in neither LRA table). The LRA
per-model sizes (`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("xca", arg)
