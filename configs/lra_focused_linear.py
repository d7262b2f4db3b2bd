"""FLatten's focused linear attention (Han et al. 2023, arXiv:2308.00442) on Long Range Arena.

  python -m experiments.train --config=configs/lra_focused_linear.py --workdir=runs/lra_focused_linear
  python -m experiments.train --config=configs/lra_focused_linear.py:smoke --workdir=/tmp/smoke

Hyper-parameters: focusing factor p = 3 (the paper's default) and a 1-D depthwise conv of V with
5 taps over tokens (the paper's DWC is 5×5 on the image grid; a sequence has one axis, so 5 taps
keep its per-axis reach). The learned per-channel scale and the conv are declared parameters.
Published LRA results: none (the paper evaluates ImageNet, COCO and ADE20K). The LRA per-model
sizes (`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("focused_linear", arg, focusing_factor=3.0, conv_kernel_size=5)
