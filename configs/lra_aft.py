"""AFT, the Attention Free Transformer (Zhai et al. 2021, arXiv:2105.14103), on Long Range Arena.

  python -m experiments.train --config=configs/lra_aft.py --workdir=runs/lra_aft
  python -m experiments.train --config=configs/lra_aft.py:smoke --workdir=/tmp/smoke

AFT replaces dot-product attention by per-channel weighted means of the values,
σ(q_t) ⊙ Σ_s exp(k_s + w_ts)·v_s / Σ_s exp(k_s + w_ts), on the layer's per-head projections.
Hyper-parameters (chosen here; the paper reports no LRA setting): mode='simple' (w = 0), the
paper's linear-time variant, because 'full'/'local' learn a T_max × T_max pair-bias matrix
per layer (16M parameters at LRA's 4K tokens) and cost O(T²·H). Try the others with
--config.model.attention.aft.mode=local --config.model.attention.aft.window=32 (the learned
pair bias is then created at the model's sequence length). Published LRA results: none.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("aft", arg, mode="simple")
