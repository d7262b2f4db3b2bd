"""ReLiT, gated recurrent linear attention (Pramanik et al. 2023, arXiv:2310.15719) on Long Range
Arena.

  python -m experiments.train --config=configs/lra_relit.py --workdir=runs/lra_relit
  python -m experiments.train --config=configs/lra_relit.py:smoke --workdir=/tmp/smoke

No hyper-parameters beyond the chunk size of the exact chunk-parallel form (`chunk_size`, 8:
the fastest measured on a CPU): the gates (W_γ, b_γ, W_β, b_β per kv head) are declared
parameters, φ = elu+1. LRA classification is bidirectional, so this runs the documented
bidirectional form (forward read + reversed exclusive read; jaxattn/attention/relit.py). Published LRA results: none
(the paper evaluates reinforcement learning). The LRA per-model sizes (`setup=lra`) are the
Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("relit", arg)
