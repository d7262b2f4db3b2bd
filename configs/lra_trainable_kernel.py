"""Linear attention with a trainable feed-forward kernel (Yorsh & Kovalenko 2022,
arXiv:2211.04076) on Long Range Arena.

  python -m experiments.train --config=configs/lra_trainable_kernel.py --workdir=runs/lra_trainable_kernel
  python -m experiments.train --config=configs/lra_trainable_kernel.py:smoke --workdir=/tmp/smoke

Hyper-parameters: hidden width R = 32 of the residual MLP feature map per kv head (our choice, a
small kernel next to head dims of 32-64; jaxattn/attention/trainable_kernel.py describes the map).
Published LRA results: not quoted (the paper evaluates its feed-forward kernels on LRA, but with
its own kernel architectures and training setup, not this residual map; we did not check its
tables against this implementation). The LRA per-model sizes (`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("trainable_kernel", arg, hidden_dim=32)
