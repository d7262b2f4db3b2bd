"""Top-k sparse attention (DLGSANet, Li et al. 2023, arXiv:2301.02031; IceFormer, Mao et al. 2024,
arXiv:2405.02842) on Long Range Arena.

  python -m experiments.train --config=configs/lra_topk.py --workdir=runs/lra_topk
  python -m experiments.train --config=configs/lra_topk.py:smoke --workdir=/tmp/smoke

Each query keeps its k largest logits among the keys it may see (dense reference, O(T·S)).
top_k = 32: our choice, neither paper runs LRA. DLGSANet keeps a fraction of the keys of an
image window and IceFormer k in the tens for LLM inference; 32 of ListOps' 2000 tokens (1.6%) is
in that range and matches the default of `topk_attention`. Published LRA results: none. The LRA
per-model sizes (`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("topk", arg, top_k=32)
