"""MRA attention (Zeng et al. 2022, arXiv:2207.10284; MRA-2) on Long Range Arena.

  python -m experiments.train --config=configs/lra_mra.py --workdir=runs/lra_mra
  python -m experiments.train --config=configs/lra_mra.py:smoke --workdir=/tmp/smoke

Coarse block-mean scores everywhere, the top blocks refined at full resolution, one shared
normaliser. block_size 32 and num_blocks_per_row 4: the authors' MRA-2 defaults (their code's
fixed 32-token blocks and `block_per_row=4`, also Hugging Face's MraConfig), which the paper
runs on LRA in the Nyströmformer setup (the default `setup=nystromformer` here). Published LRA
numbers: the paper's LRA table (MRA-2 and MRA-2-s); not copied here, see the paper (LRA.md in
the shared reference keeps the tables we verified). No causal form or packing (mra.py).
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("mra", arg, block_size=32, num_blocks_per_row=4)
