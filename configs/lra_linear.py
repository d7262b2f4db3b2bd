"""Linear Transformer, elu+1 feature map (Katharopoulos et al. 2020, arXiv:2006.16236) on LRA.

  python -m experiments.train --config=configs/lra_linear.py --workdir=runs/lra_linear
  python -m experiments.train --config=configs/lra_linear.py:smoke --workdir=/tmp/smoke

No attention-specific hyper-parameter changes the result: chunk_size=64 only sets the block of
the chunked causal form (unused by the bidirectional LRA encoder). Published ListOps test
accuracy: 16.13% (LRA paper Table 1, `setup=lra`); the Nyströmformer paper reports none; majority
class ~17%.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("linear", arg, lra_model="linear_transformer", chunk_size=64)
