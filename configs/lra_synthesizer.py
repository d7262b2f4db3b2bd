"""Synthesizer (Tay et al. 2021, arXiv:2005.00743) on Long Range Arena.

  python -m experiments.train --config=configs/lra_synthesizer.py --workdir=runs/lra_synthesizer
  python -m experiments.train --config=configs/lra_synthesizer.py:smoke --workdir=/tmp/smoke

Hyper-parameters: `random` mode with trainable random logits (LRA-code's Synthesizer default,
LRA.md §3.2); the logits table is [T_max, S_max] per head with T_max = S_max = the task length.
Dense mode: --config.model.attention.synthesizer.mode=dense. Published ListOps test accuracy:
36.99% (LRA paper Table 1, `setup=lra`); the Nyströmformer paper reports none; majority ~17%.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config(
        "synthesizer", arg, lra_model="synthesizer", mode="random", trainable_random=True
    )
