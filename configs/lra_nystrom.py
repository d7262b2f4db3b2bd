"""Nyströmformer on Long Range Arena (Xiong et al. 2021, arXiv:2102.03902).

  python -m experiments.train --config=configs/lra_nystrom.py --workdir=runs/lra_nystrom
  python -m experiments.train --config=configs/lra_nystrom.py:smoke --workdir=/tmp/smoke   # < 2 min

ListOps with the paper's setup (configs/lra_base.py): 64 landmarks, 6 pseudo-inverse iterations,
depthwise conv residual with kernel 35 (mlpen/Nystromformer `extra_attn_config['nystrom-64']`).
Paper: 37.15% ListOps test accuracy (Table 3); majority class ~17%. Config string keys: task
(listops | text | retrieval | image | pathfinder | pathx; configs/lra_base.py), setup
(nystromformer | lra), smoke. Switch the attention from the command line with
--config.model.attention.kind=softmax.
"""

from configs import lra_base
from jaxattn.sweeps import axes


def get_config(arg: str | None = None):
    return lra_base.get_lra_config(
        "nystrom", arg, num_landmarks=64, pinv_iterations=6, conv_kernel_size=35
    )


def get_sweep(arg: str | None = None):
    """The reproduction sweep: seeds 0, 1, 2 (mean ± std in the root's results.md).

    python -m experiments.sweep --config=configs/lra_nystrom.py --workdir_root=runs/sweeps/lra_nystrom
    """
    del arg  # the same seeds for every task and setup
    return axes.axis("train.seed", [0, 1, 2])
