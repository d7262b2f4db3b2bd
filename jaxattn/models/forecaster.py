"""Transformer forecasters: a look-back window [B, L, C] -> the next P steps [B, P, C].

One model, `Forecaster`, with three token layouts (LAYOUTS) around the shared encoder stack
(`models/transformer.py`), so any non-causal registry kind is the attention
(`--config.model.attention.kind=...`):

- `time_step`: one token per time step (the vanilla Transformer forecaster of Informer-era
  benchmarks, encoder only): Dense(C -> D) + absolute positions, the encoder, then Dense(D -> C)
  per token and a Linear over time L -> P shared by the channels. (The other common head,
  flatten + Dense(L*D -> P*C), has L*D*P*C weights: 1.3e9 at L = 336, D = 512, P = 720, C = 7;
  the two-step head is the same kind of linear read-out with D*C + L*P weights.)
- `patch` (PatchTST, Nie et al. 2023, https://arxiv.org/abs/2211.14730): channel independence
  (every channel its own sequence: rows B*C share all weights), the series padded at the end
  with `stride` copies of its last value, cut into patches of `patch_len` every `stride` steps
  (num_patches = (L - patch_len) // stride + 2; 42 at L = 336, 16, 8: "PatchTST/42"), Linear
  patch embedding + learned positions, the encoder, and a flatten head
  Linear(num_patches * D -> P) per channel.
- `variate` (iTransformer, Liu et al. 2024, https://arxiv.org/abs/2310.06625): each variate's
  whole look-back window is one token (Linear L -> D), the encoder runs over the C variate
  tokens, Linear D -> P per token, transposed to [B, P, C]. Variates are a set, not a sequence:
  the layout takes no positions (absolute or relative), so permuting the input channels permutes
  the outputs.

`revin` wraps every layout in reversible instance normalization (RevIN, Kim et al. 2022,
https://openreview.net/forum?id=cGDAkQo1C0p): each row's channels are normalized by their own
mean and std over the window on the way in and mapped back on the way out. `revin_affine` adds
RevIN's learnable per-channel scale and shift. Both papers' scripts run the non-affine form
(PatchTST's run_longExp.py: revin=1, affine=0; iTransformer's use_norm), which also keeps the
variate layout permutation equivariant (affine parameters belong to a channel index).

Deviations from the papers' code: the shared stack is pre-LN with a final LayerNorm (PatchTST
uses post-norm BatchNorm, iTransformer post-LN); PatchTST's positions are N(0, 0.02) here
instead of U(-0.02, 0.02); no time-feature covariate tokens (iTransformer can append them).

Every token is real (no padding) and the encoder is bidirectional, so the model asks its
attention kind for no mask and no causality (`models.ATTENTION_NEEDS['forecaster']`).
SETTINGS holds the papers' ETTh1 hyper-parameters for configs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import errors
from jaxattn.attention.core import BoundAttention
from jaxattn.layers import embeddings
from jaxattn.models import transformer

# The papers' ETTh1 settings. `model` holds Forecaster fields only (a config can
# `config.model.update(SETTINGS[name]['model'])`); `look_back` is L, `horizons` the P values
# reported, `train` the optimizer loop of the authors' scripts.
SETTINGS: dict[str, dict[str, Any]] = {
    # yuqinie98/PatchTST PatchTST_supervised/scripts/PatchTST/etth1.sh (the small model for the
    # small ETT sets) over run_longExp.py's defaults: RevIN on, affine off, padding 'end', head
    # dropout 0 (fc_dropout only feeds the pretraining head), no attention dropout; Adam lr 1e-4,
    # batch 128, 100 epochs, patience 100, lradj 'type3' (utils/tools.py, called after epoch e
    # with e + 1: lr through epoch 4, then x0.9 per epoch).
    "patchtst_etth1": {
        "model": {
            "layout": "patch",
            "patch_len": 16,
            "stride": 8,
            "emb_dim": 16,
            "num_heads": 4,
            "num_layers": 3,
            "mlp_dim": 128,
            "dropout_rate": 0.3,
            "attention_dropout_rate": 0.0,
            "positional": "learned",
            "revin": True,
            "revin_affine": False,
        },
        "look_back": 336,
        "horizons": (96, 192, 336, 720),
        "train": {"learning_rate": 1e-4, "batch_size": 128, "num_epochs": 100},
    },
    # thuml/iTransformer scripts/multivariate_forecasting/ETT/iTransformer_ETTh1.sh: 2 layers,
    # D = d_ff = 256 for P = 96, 192 and 512 for P = 336, 720 (set emb_dim = mlp_dim = 512
    # there). Heads, dropout and the loop are run.py's defaults (n_heads 8, dropout 0.1, Adam
    # lr 1e-4, batch 32, 10 epochs), read from forks of run.py, not the authors' file.
    "itransformer_etth1": {
        "model": {
            "layout": "variate",
            "emb_dim": 256,
            "num_heads": 8,
            "num_layers": 2,
            "mlp_dim": 256,
            "dropout_rate": 0.1,
            "attention_dropout_rate": 0.0,
            "positional": "none",
            "revin": True,
            "revin_affine": False,
        },
        "look_back": 96,
        "horizons": (96, 192, 336, 720),
        "train": {"learning_rate": 1e-4, "batch_size": 32, "num_epochs": 10},
    },
}


class RevIN(nn.Module):
    """Reversible instance normalization over the time axis, per row and channel.

    `normalize(x)` [B, L, C] -> (x', stats); `denormalize(y, stats)` [B, P, C] -> y in x's units.
    std is sqrt(var + eps) (biased var); the affine map w * x + b is inverted with
    (y - b) / (w + eps²) as in the RevIN code. For a > 0, normalize(a x + b) = normalize(x) up to
    eps, so a model between the two maps satisfies f(a x + b) = a f(x) + b per channel.
    """

    num_channels: int
    affine: bool = True
    eps: float = 1e-5

    def setup(self):
        if self.affine:
            self.scale = self.param("scale", nn.initializers.ones, (self.num_channels,))
            self.bias = self.param("bias", nn.initializers.zeros, (self.num_channels,))

    def normalize(self, x: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        mean = x.mean(axis=1, keepdims=True)  # [B, 1, C]
        std = jnp.sqrt(x.var(axis=1, keepdims=True) + self.eps)  # [B, 1, C]
        x = (x - mean) / std
        if self.affine:
            x = x * self.scale + self.bias
        return x, (mean, std)

    def denormalize(self, y: jax.Array, stats: tuple[jax.Array, jax.Array]) -> jax.Array:
        mean, std = stats
        if self.affine:
            y = (y - self.bias) / (self.scale + self.eps**2)
        return y * std + mean


def num_patches(length: int, patch_len: int, stride: int) -> int:
    """Patches of a length-L series after PatchTST's end padding by `stride` copies of its last
    value: (L + stride - patch_len) // stride + 1 (= (L - patch_len) // stride + 2 for L >= it)."""
    return (length + stride - patch_len) // stride + 1


def patchify(series: jax.Array, patch_len: int, stride: int) -> jax.Array:
    """[R, L] -> [R, num_patches, patch_len]: end-padded by repeating the last value `stride`
    times, then windows of `patch_len` starting every `stride` steps (torch's unfold)."""
    padded = jnp.concatenate([series, jnp.repeat(series[:, -1:], stride, axis=1)], axis=1)
    n = num_patches(series.shape[1], patch_len, stride)
    index = np.arange(n)[:, None] * stride + np.arange(patch_len)[None, :]  # [Np, patch_len]
    return padded[:, index]


def _dense(model: nn.Module, features: int, name: str) -> nn.Dense:
    return nn.Dense(features, dtype=model.dtype, name=name)


# Layout functions run inside Forecaster.__call__ (nn.compact), so the Dense layers they make
# are the forecaster's submodules. Tokens [R, T, D]: R = B (time_step, variate) or B*C (patch).
def _time_step_tokens(m: Forecaster, x: jax.Array) -> jax.Array:
    return _dense(m, m.emb_dim, "embed")(x)  # [B, L, C] -> [B, L, D]


def _time_step_head(m: Forecaster, h: jax.Array, x: jax.Array) -> jax.Array:
    y = _dense(m, m.num_channels, "head_channels")(h)  # [B, L, C]
    y = _dense(m, m.horizon, "head_time")(jnp.swapaxes(y, 1, 2))  # [B, C, P]: L -> P
    return jnp.swapaxes(y, 1, 2)  # [B, P, C]


def _patch_tokens(m: Forecaster, x: jax.Array) -> jax.Array:
    B, L, C = x.shape
    series = jnp.swapaxes(x, 1, 2).reshape(B * C, L)  # channel independence: one row each
    return _dense(m, m.emb_dim, "embed")(patchify(series, m.patch_len, m.stride))  # [B*C, Np, D]


def _patch_head(m: Forecaster, h: jax.Array, x: jax.Array) -> jax.Array:
    B, _, C = x.shape
    y = _dense(m, m.horizon, "head")(h.reshape(B * C, -1))  # [B*C, Np*D] -> [B*C, P]
    return jnp.swapaxes(y.reshape(B, C, m.horizon), 1, 2)  # [B, P, C]


def _variate_tokens(m: Forecaster, x: jax.Array) -> jax.Array:
    return _dense(m, m.emb_dim, "embed")(jnp.swapaxes(x, 1, 2))  # [B, C, L] -> [B, C, D]


def _variate_head(m: Forecaster, h: jax.Array, x: jax.Array) -> jax.Array:
    return jnp.swapaxes(_dense(m, m.horizon, "head")(h), 1, 2)  # [B, C, P] -> [B, P, C]


@dataclasses.dataclass(frozen=True)
class Layout:
    """tokens(model, x [B, L, C]) -> [R, T, D]; head(model, states [R, T, D], x) -> [B, P, C];
    `ordered`: the tokens form a sequence, so absolute and relative positions apply."""

    tokens: Callable[..., jax.Array]
    head: Callable[..., jax.Array]
    ordered: bool


LAYOUTS: dict[str, Layout] = {
    "time_step": Layout(_time_step_tokens, _time_step_head, ordered=True),
    "patch": Layout(_patch_tokens, _patch_head, ordered=True),
    "variate": Layout(_variate_tokens, _variate_head, ordered=False),
}


class Forecaster(nn.Module):
    """inputs [B, L, C] (normalized look-back window) -> (predictions [B, P, C] float32, {}).

    Attributes:
      max_length, num_channels, horizon: L, C, P (from the data, through `build_model`).
      layout: 'time_step' | 'patch' | 'variate' (LAYOUTS; see the module docstring).
      emb_dim, num_layers, num_heads, mlp_dim, num_kv_heads, head_dim: the encoder (D, layers,
        N, MLP width, K, H).
      patch_len, stride: the patch layout's patches (PatchTST: 16, 8).
      revin, revin_affine: RevIN around the model, with or without its per-channel affine map.
      positional: absolute positions of ordered layouts: 'learned' | 'sinusoidal' | 'none'.
      relative (+ relative_max_distance, relative_num_buckets, rope_base): the scheme inside
        attention (layers/posenc.py), ordered layouts only.
      dropout_rate, attention_dropout_rate: residual/embedding and attention-probability dropout.
    """

    attention: BoundAttention
    max_length: int
    num_channels: int
    horizon: int
    layout: str
    emb_dim: int
    num_layers: int
    num_heads: int
    mlp_dim: int
    num_kv_heads: int | None = None
    head_dim: int | None = None
    patch_len: int = 16
    stride: int = 8
    revin: bool = True
    revin_affine: bool = True
    positional: str = "learned"
    position_init_stddev: float = 0.02
    relative: str = "none"
    relative_max_distance: int = 128
    relative_num_buckets: int = 32
    rope_base: float = 10_000.0
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    dtype: Any = jnp.float32

    def __post_init__(self):
        # Config errors surface when build_model constructs the module, before any tracing.
        if self.layout not in LAYOUTS:
            raise errors.ConfigError(
                f"unknown model.layout '{self.layout}'; choose from {', '.join(LAYOUTS)}"
            )
        if not LAYOUTS[self.layout].ordered and {self.positional, self.relative} != {"none"}:
            raise errors.ConfigError(
                f"layout '{self.layout}' has no token order (its tokens are the variates); set "
                "--config.model.positional=none and --config.model.relative=none"
            )
        if self.layout == "patch" and not (
            0 < self.stride and 0 < self.patch_len <= self.max_length + self.stride
        ):
            raise errors.ConfigError(
                f"patch layout needs stride > 0 and 0 < patch_len <= max_length + stride; got "
                f"patch_len={self.patch_len}, stride={self.stride}, max_length={self.max_length}"
            )
        super().__post_init__()

    @nn.compact
    def __call__(self, inputs: jax.Array, *, deterministic: bool = True) -> tuple[jax.Array, dict]:
        if inputs.shape[1:] != (self.max_length, self.num_channels):
            raise ValueError(
                f"inputs must be [B, {self.max_length}, {self.num_channels}] (max_length, "
                f"num_channels); got {inputs.shape}"
            )
        layout = LAYOUTS[self.layout]
        x = inputs.astype(jnp.float32)  # [B, L, C]
        if self.revin:
            revin = RevIN(self.num_channels, affine=self.revin_affine, name="revin")
            x, stats = revin.normalize(x)
        tokens = layout.tokens(self, x.astype(self.dtype))  # [R, T, D]
        if layout.ordered:
            tokens = embeddings.PositionalEmbedding(
                self.positional,
                tokens.shape[1],
                init_stddev=self.position_init_stddev,
                name="positions",
            )(tokens)
        tokens = nn.with_logical_constraint(tokens, ("batch", "length", "embed"))
        states = transformer.from_fields(self, "encoder")(tokens, deterministic=deterministic)
        predictions = layout.head(self, states, x).astype(jnp.float32)  # [B, P, C]
        if self.revin:
            predictions = revin.denormalize(predictions, stats)
        return predictions, {}
