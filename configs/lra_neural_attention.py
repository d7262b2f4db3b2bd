"""Neural attention (2025, arXiv:2502.17206): logits from a per-head FFN on each (q, k) pair, on
Long Range Arena.

  python -m experiments.train --config=configs/lra_neural_attention.py --workdir=runs/lra_neural_attention
  python -m experiments.train --config=configs/lra_neural_attention.py:smoke --workdir=/tmp/smoke

hidden_dim F = 16 and chunks of 128 queries are this repository's choices (the paper reports no
LRA run; at LRA's lengths, T = 1-4K, the pair network costs T²·F per head, so F is kept small and
the chunk bounds the hidden tensor to 128·T·F per head). GELU hidden activation.
Published LRA results: none.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("neural_attention", arg, hidden_dim=16, chunk_size=128)
