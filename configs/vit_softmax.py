"""A small ViT on Fashion-MNIST (offline) with exact softmax attention (the baseline).

  python -m experiments.train --config=configs/vit_softmax.py --workdir=runs/vit_softmax
  python -m experiments.train --config=configs/vit_softmax.py:smoke --workdir=/tmp/vit_smoke

50 tokens (CLS + a 7x7 patch grid), so O(T²) costs nothing here. Settings: configs/vit_base.py.
"""

from configs import vit_base


def get_config(arg: str | None = None):
    return vit_base.get_vit_config("softmax", arg)
