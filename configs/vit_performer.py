"""A small ViT on Fashion-MNIST (offline) with FAVOR+ (Performer, Choromanski et al. 2021).

  python -m experiments.train --config=configs/vit_performer.py --workdir=runs/vit_performer
  python -m experiments.train --config=configs/vit_performer.py:smoke --workdir=/tmp/vit_smoke

64 positive random features per head (more than the 50 tokens), redrawn every step, a fixed draw
at evaluation. Settings: configs/vit_base.py (VIT_ATTENTION).
"""

from configs import vit_base


def get_config(arg: str | None = None):
    return vit_base.get_vit_config("performer", arg)
