"""Linformer (Wang et al. 2020, arXiv:2006.04768) on Long Range Arena.

  python -m experiments.train --config=configs/lra_linformer.py --workdir=runs/lra_linformer
  python -m experiments.train --config=configs/lra_linformer.py:smoke --workdir=/tmp/smoke

Hyper-parameters: k = 256 projected keys (Nys-code `linformer-256`, LRA.md §3.4), separate E and
F per kv head. Under `setup=lra`: LRA-code's default, k = 16 with one projection shared between
keys and values (LRA.md §3.2). Published ListOps test accuracy: 37.25% (Nyströmformer paper
Table 3, default setup), 35.70% (LRA paper Table 1, `setup=lra`); majority class ~17%.
Linformer has no causal form: `--config.model.causal=True` raises.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config(
        "linformer",
        arg,
        lra_model="linformer",
        num_projections=256,
        lra_overrides={"num_projections": 16, "share_kv": True},
    )
