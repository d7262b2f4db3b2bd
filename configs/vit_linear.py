"""A small ViT on Fashion-MNIST (offline) with elu+1 linear attention (Katharopoulos et al. 2020).

  python -m experiments.train --config=configs/vit_linear.py --workdir=runs/vit_linear
  python -m experiments.train --config=configs/vit_linear.py:smoke --workdir=/tmp/vit_smoke

Non-causal, so one pass of φ(K)ᵀV (O(T·H²)); no hyper-parameters to fit to 50 tokens.
Settings: configs/vit_base.py.
"""

from configs import vit_base


def get_config(arg: str | None = None):
    return vit_base.get_vit_config("linear", arg)
