"""Routing Transformer (Roy et al. 2021, arXiv:2003.05997) on Long Range Arena.

  python -m experiments.train --config=configs/lra_routing.py --workdir=runs/lra_routing
  python -m experiments.train --config=configs/lra_routing.py:smoke --workdir=/tmp/smoke

Hyper-parameters: 45 clusters ≈ sqrt(2000) (the paper's O(T^1.5) choice, C = sqrt(T)), each
keeping its ⌈T / C⌉ best queries and keys (window unset), centroids updated by an EMA with decay
0.999 (the paper's k-means update). Neither LRA paper reports Routing on ListOps; there is no
published number to compare with. Majority class ~17%.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("routing", arg, num_clusters=45, ema_decay=0.999)
