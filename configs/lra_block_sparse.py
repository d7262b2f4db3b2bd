"""Block-sparse attention on Long Range Arena: BigBird by default, Longformer / Sparse Transformer.

  python -m experiments.train --config=configs/lra_block_sparse.py --workdir=runs/lra_bigbird
  python -m experiments.train --config=configs/lra_block_sparse.py:smoke --workdir=/tmp/smoke

Papers: BigBird (Zaheer et al. 2020, arXiv:2007.14062), Longformer (Beltagy et al. 2020,
arXiv:2004.05150), Sparse Transformer (Child et al. 2019, arXiv:1904.10509). Published ListOps
test accuracy (LRA paper Table 1, LRA.md §4.1; its setup is `setup=lra`): BigBird 36.05%,
Longformer 35.63%, Sparse Transformer 17.07%, Local Attention 15.82% (configs/lra_local.py).
The Nyströmformer paper reports none of these (§4.2). The majority class is ~17%.

Default, BigBird: layout='bigbird', block_size=64, num_random_blocks=3 follow LRA.md §3.2
"Attention-specific defaults in LRA-code" (BigBird: block 64, 3 random blocks);
num_window_blocks=3 and num_global_blocks=2 (the first and last block) are BigBird-ITC's. The
random blocks come from the layer's attention rng: new ones per layer and kv head every train
step, fixed at evaluation (the trainer's eval rng), like every other random kind.

Other layouts from the command line (P = --config.model.attention.block_sparse):
  Longformer:          P.layout=longformer P.num_window_blocks=9 P.num_global_blocks=0
    LRA-code's Longformer is a 512-token sliding window implemented as a mask, with no global
    tokens (§3.2). In blocks of 64, 9 window blocks cover at least ±256 tokens (up to ±319 at
    block edges); the element-exact window is configs/lra_local.py with P'.mode=sliding
    P'.window_left=255 P'.window_right=256 (P' = --config.model.attention.local). Add global
    block 0 (the CLS token with pooling=cls) with P.num_global_blocks=1.
  Sparse Transformer:  P.layout=fixed P.block_size=10 P.stride=5 P.num_summary_blocks=1
    LRA.md §3.2: fixed patterns with block 50 and c = 10. Blocks of 10 in windows of 5 blocks
    with one summary block are exactly the paper's fixed pattern with l = 50, c = 10. LRA-code
    makes every Sparse Transformer pattern causal (add --config.model.causal=True to match) and
    also lets position 0 of each window through as a summary column.
  Strided:             P.layout=strided P.stride=4   (block level; no LRA setting)
Config string keys: task (listops | text | retrieval | image |
pathfinder | pathx; configs/lra_base.py), setup (nystromformer | lra), smoke.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config(
        "block_sparse",
        arg,
        lra_model="bigbird",
        layout="bigbird",
        block_size=64,
        num_window_blocks=3,
        num_global_blocks=2,
        num_random_blocks=3,
    )
