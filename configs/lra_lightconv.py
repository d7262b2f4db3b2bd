"""Lightweight convolution (Wu et al. 2019, arXiv:1901.10430) as the token mixer on Long Range Arena.

  python -m experiments.train --config=configs/lra_lightconv.py --workdir=runs/lra_lightconv
  python -m experiments.train --config=configs/lra_lightconv.py:smoke --workdir=/tmp/smoke

The mixer replaces the whole attention sublayer: GLU input projection, a depthwise convolution
with softmax-normalised kernels shared by channel groups, output projection. Hyper-parameters:
kernel_size=31 and num_kernels=16, the paper's widest encoder kernel and its H = 16 (the paper
evaluates on translation, language modelling and summarisation, not LRA, and widens the kernel
per layer, 3 to 31; one width is used for every layer here, the widest, because LRA's sequences
are long). Attention dropout is the paper's DropConnect on the normalised kernels. Published LRA
results: none. The LRA per-model sizes (`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("lightconv", arg, kernel_size=31, num_kernels=16)
