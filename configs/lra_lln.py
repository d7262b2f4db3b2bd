"""Linear Log-Normal attention (Nahshan et al. 2023, arXiv:2311.13541) on Long Range Arena.

  python -m experiments.train --config=configs/lra_lln.py --workdir=runs/lra_lln
  python -m experiments.train --config=configs/lra_lln.py:smoke --workdir=/tmp/smoke

Hyper-parameters: plain LLN (diag_block_size 0; set --config.model.attention.lln.diag_block_size
to e.g. 64 for the paper's LLN+Diag), running-std momentum 0.99 (our choice: the paper keeps
running statistics but we did not take a value from it). The running stds are non-gradient state
('attention_state'), updated in training and read in evaluation. Published LRA results: none (the
paper evaluates GLUE fine-tuning and pre-training). The LRA per-model sizes (`setup=lra`) are the
Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("lln", arg, std_momentum=0.99, diag_block_size=0)
