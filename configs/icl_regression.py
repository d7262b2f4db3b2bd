"""In-context linear regression with multi-head attention (seed: "In-Context Linear Regression
Demystified: Training Dynamics and Mechanistic Interpretability of Multi-Head Softmax Attention",
2025).

  python -m experiments.train --config=configs/icl_regression.py --workdir=runs/icl_h4
  python -m experiments.sweep --config=configs/icl_regression.py --workdir_root=runs/icl \\
      --sweep=model.num_heads=1,2,4,8            # trained error against the number of heads
  python scripts/icl_regression_plot.py --workdir_root=runs/icl   # the PNG, with ridge and GD

Config string: `heads=H` (default 4), `kind=softmax|linear|...` (any non-causal kind), `smoke`.
Data (`jaxattn/data/icl_regression.py`): d = 5, N = 20 example pairs per prompt, noise σ = 0.1,
a fresh w ~ N(0, I) per prompt; 100k training prompts generated on access. Model
(`jaxattn/models/regressor.py`): one attention-only layer, heads of width d + 1, read at the
query's y. Adam, peak lr 1e-3, cosine, 3000 steps of 256 prompts; selected on validation MSE.
results.json also holds the test prompts' ridge (Bayes-optimal), best one-step-GD and zero
predictor errors.
"""

from __future__ import annotations

from ml_collections import config_dict

from configs import common


def get_config(arg: str | None = None) -> config_dict.ConfigDict:
    args = common.parse_arg(arg, heads=4, kind="softmax", smoke=False)
    config = config_dict.ConfigDict()
    config.data = config_dict.ConfigDict(
        {
            "name": "icl_regression",
            "dim": 5,
            "num_points": 20,
            "noise_std": 0.1,
            "max_length": 21,  # tokens per prompt (N + 1); informational
            "num_train": 100_000,
            "num_validation": 1000,
            "num_test": 1000,
            "seed": 0,
            "batch_size": 256,
            "eval_batch_size": 256,
        }
    )
    config.model = config_dict.ConfigDict(
        {
            "name": "icl_regressor",
            "num_layers": 1,
            "num_heads": args.heads,
            "head_dim": config_dict.placeholder(int),  # None: d + 1
            "dtype": "float32",
            "attention": common.attention_config(args.kind),
        }
    )
    config.task = config_dict.ConfigDict({"name": "icl_regression"})
    config.optim = common.optim_config(
        schedule="cosine", learning_rate=1e-3, warmup_steps=100, grad_clip_norm=1.0
    )
    config.train = common.train_config(
        num_train_steps=3000, log_every_steps=100, eval_every_steps=500, best_metric="mse"
    )
    config.sharding = common.default_sharding()
    if args.smoke:
        config.data.update(
            num_train=64, num_validation=16, num_test=16, batch_size=8, eval_batch_size=8
        )
        config.optim.update(warmup_steps=1)
        config.train.update(common.SMOKE_TRAIN)  # its model has no width to shrink
    return config
