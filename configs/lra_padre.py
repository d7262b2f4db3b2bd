"""PADRe (Letourneau et al. 2024, arXiv:2407.11306), a polynomial token mixer, on Long Range Arena.

  python -m experiments.train --config=configs/lra_padre.py --workdir=runs/lra_padre
  python -m experiments.train --config=configs/lra_padre.py:smoke --workdir=/tmp/smoke

The mixer replaces the whole attention sublayer with a degree-d polynomial of its input built
from channel linears, 1-D depthwise convolutions (the sequence analogue of the paper's 2-D
depthwise token mixers) and Hadamard products. Hyper-parameters: degree=3 and kernel_size=3,
chosen: the paper (vision only) uses a low degree and small 2-D kernels; LRA was not evaluated.
No attention dropout (the kind has none). Published LRA results: none. The LRA per-model sizes
(`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("padre", arg, degree=3, kernel_size=3)
