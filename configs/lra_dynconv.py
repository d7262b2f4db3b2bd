"""Dynamic convolution (Wu et al. 2019, arXiv:1901.10430) as the token mixer on Long Range Arena.

  python -m experiments.train --config=configs/lra_dynconv.py --workdir=runs/lra_dynconv
  python -m experiments.train --config=configs/lra_dynconv.py:smoke --workdir=/tmp/smoke

The lightweight convolution (configs/lra_lightconv.py) with its kernels predicted per position by
a linear layer from the convolution's input. Hyper-parameters: kernel_size=31 and
num_kernels=16, the paper's widest encoder kernel and its H = 16 (the paper evaluates on
translation, language modelling and summarisation, not LRA; one width for every layer here).
Attention dropout is the paper's DropConnect on the predicted kernels. Published LRA results:
none. The LRA per-model sizes (`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("dynconv", arg, kernel_size=31, num_kernels=16)
