"""Performer / FAVOR+ (Choromanski et al. 2021, arXiv:2009.14794) on Long Range Arena.

  python -m experiments.train --config=configs/lra_performer.py --workdir=runs/lra_performer
  python -m experiments.train --config=configs/lra_performer.py:smoke --workdir=/tmp/smoke

Hyper-parameters: 256 random features with the ReLU kernel (Nys-code `performer-256`, lucidrains
performer-pytorch; LRA.md §3.4). Under `setup=lra`: LRA-code's ListOps config, softmax-FAVOR with
2 features (LRA.md §3.2). Features are redrawn every train step from the layer's rng and fixed at
evaluation. Published ListOps test accuracy: 18.80% (Nyströmformer paper Table 3), 18.01% (LRA
paper Table 1, `setup=lra`); majority class ~17%.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config(
        "performer",
        arg,
        lra_model="performer",
        num_features=256,
        kernel="relu",
        lra_overrides={"num_features": 2, "kernel": "softmax"},
    )
