"""Reformer LSH attention (Kitaev et al. 2020, arXiv:2001.04451) on Long Range Arena.

  python -m experiments.train --config=configs/lra_reformer.py --workdir=runs/lra_reformer
  python -m experiments.train --config=configs/lra_reformer.py:smoke --workdir=/tmp/smoke

Hyper-parameters: 2 hash rounds (Nys-code `reformer-2`, LRA.md §3.4), 32 buckets, chunks of 64.
Under `setup=lra`: LRA-code's defaults, 1 hash round and chunks of 10 (LRA.md §3.2). Hashes are
redrawn every train step from the layer's rng and fixed at evaluation. Published ListOps test
accuracy: 19.05% (Nyströmformer paper Table 3), 37.27% (LRA paper Table 1, `setup=lra`);
majority class ~17%.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config(
        "reformer",
        arg,
        lra_model="reformer",
        num_hashes=2,
        num_buckets=32,
        chunk_size=64,
        lra_overrides={"num_hashes": 1, "chunk_size": 10},
    )
