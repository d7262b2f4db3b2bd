"""CoCA, Collinear Constrained Attention (Zhu et al. 2023, arXiv:2309.08646), on Long Range Arena.

  python -m experiments.train --config=configs/lra_coca.py --workdir=runs/lra_coca
  python -m experiments.train --config=configs/lra_coca.py:smoke --workdir=/tmp/smoke

Keys are non-negative multiples of the query inside every RoPE plane; the kind applies its own
RoPE (positions from 0, restarting per packed segment), so the model's relative scheme must stay
`none` (config.model.relative, the LRA default here): a second rotation by the layer would be
applied on top. rope_base 10000 as in the authors' LLaMA code. Published LRA results: none (the
paper evaluates long-context language modelling).
"""

from configs import lra_base


def get_config(arg: str | None = None):
    config = lra_base.get_lra_config("coca", arg, rope_base=10000.0)
    config.model.relative = "none"  # coca rotates q and k itself
    return config
