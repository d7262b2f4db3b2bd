"""Agent attention (Han et al. 2023, arXiv:2312.08873) on Long Range Arena.

  python -m experiments.train --config=configs/lra_agent.py --workdir=runs/lra_agent
  python -m experiments.train --config=configs/lra_agent.py:smoke --workdir=/tmp/smoke

Hyper-parameters: 64 agents (the paper uses 49 = 7×7 for ~3k-token ImageNet feature maps at its
first stage; we round up to 64 for LRA's 1k-4k-token sequences) and a 3-tap 1-D depthwise conv of
V (the paper's DWC is 3×3 on the image grid). The agent biases are [N, a, max_length] and
[N, max_length, a] tables. Published LRA results: none (the paper evaluates ImageNet, COCO, ADE20K
and Stable Diffusion). The LRA per-model sizes (`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("agent", arg, num_agents=64, conv_kernel_size=3)
