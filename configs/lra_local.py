"""Local attention (LRA's non-overlapping blocks) on Long Range Arena.

  python -m experiments.train --config=configs/lra_local.py --workdir=runs/lra_local
  python -m experiments.train --config=configs/lra_local.py:smoke --workdir=/tmp/smoke   # < 2 min

Papers: LRA's "Local Attention" baseline (Tay et al. 2021, arXiv:2011.04006, after Parmar et al.
2018, arXiv:1802.05751); the sliding-window form is local self-attention over long text
(Hofstätter et al. 2020, arXiv:2005.04908). Published ListOps test accuracy: 15.82% (LRA paper
Table 1, LRA.md §4.1; its setup is `setup=lra`); the Nyströmformer paper reports none (§4.2);
the majority class is ~17%.

Hyper-parameters: mode='block', block_size=50, following LRA.md §3.2 "Attention-specific
defaults in LRA-code" (local attention: block_size=50, non-overlapping). Config string keys: task
(listops | text | retrieval | image | pathfinder | pathx; configs/lra_base.py), setup
(nystromformer | lra), smoke. A sliding window instead (P = --config.model.attention.local):
  P.mode=sliding P.window_size=64                     # query t sees t-64 ... t+64
  P.mode=sliding P.window_left=255 P.window_right=256  # LRA-code's Longformer: a 512-token
                                                      # window, no global tokens (§3.2)

Note, from reading LRA-code (lra_benchmarks/models/local/local_attention.py): it reshapes [T]
to (block_size, T / block_size) and attends over the first axis, so a query there sees the
positions congruent to it modulo T / block_size rather than its own contiguous block. This kind
implements the contiguous blocks that the LRA paper describes.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("local", arg, lra_model="local", mode="block", block_size=50)
