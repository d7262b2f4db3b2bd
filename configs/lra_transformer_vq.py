"""Transformer-VQ (Lingle 2023, arXiv:2309.16354) on Long Range Arena.

  python -m experiments.train --config=configs/lra_transformer_vq.py --workdir=runs/lra_transformer_vq
  python -m experiments.train --config=configs/lra_transformer_vq.py:smoke --workdir=/tmp/smoke

Softmax attention over keys quantised to the nearest of `num_codes` codewords, a per-kv-head
codebook kept as non-gradient state (EMA k-means, the 'attention_state' collection); LRA's
classifiers call it bidirectionally, where it runs merged per code in O((T + S)·C·H).
Hyper-parameters (chosen here; the paper reports no LRA setting): num_codes=512 and
block_size=512 (the paper's language-model scale, block length = memory length as in the
author's README; block_size only matters for causal use), ema_decay=0.99 (c_gamma in the
author's scripts/lm_enwik8.sh). The commitment loss of the paper (c_beta) is not applied: a kind
cannot add a term to the trainer's loss (jaxattn/attention/transformer_vq.py). Published LRA
results: none.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config(
        "transformer_vq", arg, num_codes=512, block_size=512, ema_decay=0.99
    )
