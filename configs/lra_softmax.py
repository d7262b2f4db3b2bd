"""Exact softmax attention (the Transformer baseline) on Long Range Arena.

  python -m experiments.train --config=configs/lra_softmax.py --workdir=runs/lra_softmax
  python -m experiments.train --config=configs/lra_softmax.py:smoke --workdir=/tmp/smoke

Same setup as configs/lra_nystrom.py with exact attention. Published ListOps test accuracy:
37.10% (Nyströmformer paper Table 3, same 2-layer setup), 36.37% (LRA paper Table 1, with
`setup=lra`). O(T²) memory: at T=2000, batch 32, 2 heads the logits take ~1 GB per layer in fp32.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("softmax", arg)
