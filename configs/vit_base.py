"""The image-classification base config; `configs/vit_<kind>.py` are thin files over it.

  python -m experiments.train --config=configs/vit_softmax.py --workdir=runs/vit_softmax
  python -m experiments.train --config=configs/vit_performer.py:dataset=digits --workdir=runs/vd
  python -m experiments.attention_maps --workdir=runs/vit_softmax --split=test --n=4

Config string: `dataset=fashion_mnist|digits|mnist|cifar10|cifar100` (DATASETS) and `smoke` (a
few steps on tiny shapes, what the tests train). fashion_mnist, the default, is offline: the
Debian package dataset-fashion-mnist, or scikit-learn's 8x8 digits when that is not installed
(one warning line says so; `jaxattn/data/images.py`). mnist and cifar* are tfds's builders and
need `--config.data.allow_download=True` (network, and TensorFlow to prepare).

Model (`jaxattn/models/vit.py`): a small ViT for a 2-core CPU: patch 4 (28x28 -> a 7x7 grid,
32x32 -> 8x8, 8x8 digits -> 2x2), width 64, 4 layers, 4 heads x 16, MLP 128, CLS pooling, fixed
2-D sin-cos positions; options `model.distillation` (DeiT token), `model.drop_path_rate`
(stochastic depth), `model.lpi` (XCiT local patch interaction), `model.posemb=learned`,
`model.pooling=mean`. Optimizer: AdamW (0.9, 0.999, wd 0.05), peak lr 1e-3, warmup 200 then
cosine to 0, clipping 1.0, batch 128, 3000 steps (~7 epochs of Fashion-MNIST's 55,000); random
crop with padding 2 (no flip) for Fashion-MNIST, plus flips for CIFAR.

Measured (2-core CPU shared with other jobs, 2026-12-06, 500 steps of batch 128 with warmup 50,
`--config.train.num_train_steps=500`): Fashion-MNIST test accuracy 0.744 with softmax (1021 s),
0.698 with linear (966 s); the default 3000 steps is not yet measured (WORKSPACE.md "Vision").
"""

from __future__ import annotations

from ml_collections import config_dict

from configs import common
from jaxattn import errors

# config-string dataset -> config.data.name (jaxattn/data/__init__.py DATASETS).
DATASETS = {
    "fashion_mnist": "fashion_mnist",
    "digits": "digits",
    "mnist": "tfds_mnist",
    "cifar10": "tfds_cifar10",
    "cifar100": "tfds_cifar100",
}
# Every kind's ViT settings, set whichever kind is chosen (so --config.model.attention.kind=
# keeps them): 64 random features for performer (more than the 50 tokens of a 7x7 grid + CLS).
VIT_ATTENTION = {"performer": {"num_features": 64}}
SMOKE_ATTENTION = {
    "softmax_chunked": {"block_q": 8, "block_k": 8},
    "performer": {"num_features": 16},
    "nystrom": {"num_landmarks": 5},
}


def get_vit_config(kind: str, arg: str | None = None) -> config_dict.ConfigDict:
    """The ViT config with attention `kind` (VIT_ATTENTION's settings for every kind)."""
    args = common.parse_arg(arg, smoke=False, dataset="fashion_mnist")
    if args.dataset not in DATASETS:
        raise errors.ConfigError(
            f"unknown dataset '{args.dataset}'; choose from {sorted(DATASETS)}"
        )
    config = config_dict.ConfigDict()
    config.data = config_dict.ConfigDict(
        {
            "name": DATASETS[args.dataset],
            "builder_config": config_dict.placeholder(str),
            "max_length": config_dict.placeholder(int),  # images are not cut to a length
            "data_dir": config_dict.placeholder(
                str
            ),  # default: $TFDS_DATA_DIR or ~/tensorflow_datasets
            "manual_dir": config_dict.placeholder(str),  # fashion_mnist's IDX files elsewhere
            "allow_build": True,  # fashion_mnist is built from the local Debian files
            "allow_download": False,  # mnist, cifar10, cifar100: tfds downloads them
            "batch_size": 128,
            "eval_batch_size": 256,
        }
    )
    config.model = config_dict.ConfigDict(
        {
            "name": "vision_transformer",
            "patch_size": 4,
            "emb_dim": 64,
            "num_layers": 4,
            "num_heads": 4,
            "num_kv_heads": config_dict.placeholder(int),
            "head_dim": 16,
            "mlp_dim": 128,
            "pooling": "cls",  # cls | mean
            "posemb": "sincos2d",  # sincos2d | learned
            "distillation": False,  # DeiT's distillation token (trained on the labels)
            "drop_path_rate": 0.0,  # stochastic depth at the last block
            "lpi": False,  # XCiT's local patch interaction in every block
            "relative": "none",
            "dropout_rate": 0.0,
            "attention_dropout_rate": 0.0,
            "dtype": "float32",
            "attention": common.attention_config(kind, **VIT_ATTENTION.get(kind, {})),
        }
    )
    for name, values in VIT_ATTENTION.items():
        if name != kind:
            config.model.attention[name].update(values)
    config.task = config_dict.ConfigDict({"name": "image_classification"})
    config.optim = common.optim_config(
        schedule="cosine",
        learning_rate=1e-3,
        warmup_steps=200,
        weight_decay=0.05,
        grad_clip_norm=1.0,
    )
    config.train = common.train_config(
        num_train_steps=3000, log_every_steps=100, eval_every_steps=500, best_metric="accuracy"
    )
    config.sharding = common.default_sharding()

    if args.smoke:
        common.apply_smoke(config, SMOKE_ATTENTION)
    return config
