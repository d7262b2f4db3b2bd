"""Exact attention through `jax.nn.dot_product_attention` on Long Range Arena.

  python -m experiments.train --config=configs/lra_softmax_xla.py --workdir=runs/lra_softmax_xla
  python -m experiments.train --config=configs/lra_softmax_xla.py:smoke --workdir=/tmp/smoke

The same function as configs/lra_softmax.py (equal to float32 tolerance) computed by JAX's own
attention API: XLA's fused kernel, or cuDNN's flash attention on NVIDIA GPUs with
--config.model.attention.softmax_xla.implementation=cudnn. Published ListOps test accuracy of
exact attention: 37.10% (Nyströmformer paper Table 3, default setup), 36.37% (LRA paper Table 1,
`setup=lra`); majority class ~17%.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("softmax_xla", arg)
