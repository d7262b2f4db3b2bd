"""Exact softmax attention in O(T) memory (chunked / online softmax) on Long Range Arena.

  python -m experiments.train --config=configs/lra_softmax_chunked.py --workdir=runs/lra_softmax_chunked
  python -m experiments.train --config=configs/lra_softmax_chunked.py:smoke --workdir=/tmp/smoke

The exact baseline for long sequences: the same function as configs/lra_softmax.py (equal to
float32 tolerance), computed in query x key blocks with an online softmax and a recomputing
backward (Rabe & Staats 2021, arXiv:2112.05682; FlashAttention-2, arXiv:2307.08691), so memory
grows as O(T) instead of O(T²) and causal runs skip the blocks above the diagonal.
Published ListOps test accuracy of exact attention: 37.10% (Nyströmformer paper Table 3, the
default 2-layer `setup=nystromformer`; LRA.md §4.2), 36.37% (LRA paper Table 1 Transformer, with
`setup=lra`; LRA.md §4.1). Hyper-parameters: block_q=512, block_k=256 follow no LRA.md setting
(neither LRA-code §3.2 nor Nys-code §3.4 has a chunked kind; exact attention has no
attention-specific setting): they are compute choices that do not change the result, the fastest
of a block sweep on 2 CPU cores (WORKSPACE.md, "The attention benchmark"), 4 x 8 blocks at
ListOps length 2000 (padded internally to 2048).
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("softmax_chunked", arg, block_q=512, block_k=256)
