"""PoNet's multi-granularity pooling (Tan et al. 2021, arXiv:2110.02442) as the token mixer on Long
Range Arena.

  python -m experiments.train --config=configs/lra_ponet.py --workdir=runs/lra_ponet
  python -m experiments.train --config=configs/lra_ponet.py:smoke --workdir=/tmp/smoke

The mixer replaces the whole attention sublayer: global aggregation (a masked mean query attends
once over the tokens), segment max-pooling, local max-pooling, multiplicative fusion and the
output dense. Hyper-parameters: num_heads=2 (the LRA Transformer's heads), local_window=3 (the
authors' code), num_segments=32 (chosen: the paper's LRA segment count is not given in a form we
could confirm; segments of T // 32 + 1 tokens). attention_dropout_rate is 0: the authors' code
drops none of the global-aggregation probabilities. Published LRA results: the paper reports all
five tasks (its Table 2, where PoNet beats its Transformer and FNet baselines on average); the
numbers are not quoted here because they could not be checked against the paper in this session.
The LRA per-model sizes (`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    config = lra_base.get_lra_config("ponet", arg, num_heads=2, num_segments=32, local_window=3)
    config.model.attention_dropout_rate = 0.0  # the authors' code drops no probabilities
    return config
