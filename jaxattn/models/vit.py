"""Vision Transformer: patch embedding, prefix tokens, the shared Transformer, pooled heads.

Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words", https://arxiv.org/abs/2010.11929, with
options from later work (each off or at the plain ViT's choice by default):

- `posemb='sincos2d'`: fixed 2-D sin-cos positions (Chen et al. 2021, MoCo v3; Beyer et al. 2022,
  "Better plain ViT baselines"): a quarter of the channels each for sin/cos of the column and row.
- `distillation=True`: DeiT's distillation token (Touvron et al. 2021,
  https://arxiv.org/abs/2012.12877), a second prefix token with its own head. DeiT trains it on a
  teacher's hard labels; without a teacher (out of scope here) both heads learn the true labels,
  so the token acts as a second CLS. Training returns both heads' logits [B, 2, C] (the
  image_classification task averages the two losses); evaluation returns their mean [B, C], as
  DeiT predicts at inference.
- `drop_path_rate`: stochastic depth, linearly rising to this rate at the last block.
- `lpi=True`: XCiT's local patch interaction in every block (layers/lpi.py).

Tokens: the prefix (CLS when `pooling='cls'`, then the distillation token) followed by the
rows x cols patch grid in raster order; the model offers `grid=(rows, cols)` to the attention
registry (`models.ATTENTION_NEEDS`), so grid-aware kinds (axial) see the image layout and every
other kind sees a flat sequence. Every token is real: no masks.

Input: images [B, H, W, C], uint8 (0..255) or float in [0, 1]; normalised here to [-1, 1], so
batches stay uint8 on the host (4x less to copy than float32).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxattn import errors
from jaxattn.attention.core import BoundAttention
from jaxattn.models import transformer

POSEMB = ("learned", "sincos2d")
POOLING = ("cls", "mean")


def sincos2d_table(rows: int, cols: int, dim: int, temperature: float = 10_000.0) -> np.ndarray:
    """[rows * cols, dim] fixed 2-D positions in raster order: [sin(x ω), cos(x ω), sin(y ω),
    cos(y ω)] with x the column, y the row and ω_i = temperature^(-i / (dim/4)), i < dim / 4."""
    if dim % 4:
        raise errors.ConfigError(f"sincos2d positions need emb_dim divisible by 4; got {dim}")
    y, x = np.mgrid[:rows, :cols]
    omega = 1.0 / temperature ** (np.arange(dim // 4) / (dim // 4))  # [dim/4]
    xw = x.reshape(-1, 1) * omega[None]  # [rows * cols, dim/4]
    yw = y.reshape(-1, 1) * omega[None]
    return np.concatenate([np.sin(xw), np.cos(xw), np.sin(yw), np.cos(yw)], axis=1).astype(
        np.float32
    )


def patch_grid(image_shape: Any, patch_size: int) -> tuple[int, int]:
    """(rows, cols) of non-overlapping patches; a ConfigError unless the patch divides H and W."""
    if image_shape is None:
        raise errors.ConfigError(
            "vision_transformer needs image_shape (the dataset offers it; build_model(..., "
            "image_shape=(H, W, C)))"
        )
    height, width = int(image_shape[0]), int(image_shape[1])
    if height % patch_size or width % patch_size:
        raise errors.ConfigError(
            f"model.patch_size={patch_size} must divide the image size {height}x{width}"
        )
    return height // patch_size, width // patch_size


def normalize_images(images: jax.Array, dtype: Any) -> jax.Array:
    """uint8 0..255 or float 0..1 -> [-1, 1] in `dtype`."""
    x = images.astype(jnp.float32)
    if jnp.issubdtype(images.dtype, jnp.integer):
        x = x / 255.0
    return (2.0 * x - 1.0).astype(dtype)


class VisionTransformer(nn.Module):
    """images [B, H, W, C] -> logits [B, num_classes] ([B, 2, num_classes] in training with the
    distillation token); see the module docstring for the options."""

    attention: BoundAttention
    num_classes: int
    emb_dim: int
    num_layers: int
    num_heads: int
    mlp_dim: int
    image_shape: tuple[int, int, int] | None = None  # from the dataset (DatasetInfo.model_fields)
    patch_size: int = 4
    num_kv_heads: int | None = None
    head_dim: int | None = None
    pooling: str = "cls"  # cls | mean (over the grid tokens)
    posemb: str = "learned"  # learned | sincos2d (grid tokens only; prefix tokens are learned)
    distillation: bool = False
    drop_path_rate: float = 0.0
    lpi: bool = False
    relative: str = "none"
    relative_max_distance: int = 128
    relative_num_buckets: int = 32
    rope_base: float = 10_000.0
    dropout_rate: float = 0.0
    attention_dropout_rate: float = 0.0
    dtype: Any = jnp.float32

    @property
    def grid(self) -> tuple[int, int]:
        return patch_grid(self.image_shape, self.patch_size)

    @property
    def num_prefix_tokens(self) -> int:
        return int(self.pooling == "cls") + int(self.distillation)

    @nn.compact
    def __call__(self, images: jax.Array, *, deterministic: bool = True) -> tuple[jax.Array, dict]:
        if self.pooling not in POOLING:
            raise errors.ConfigError(f"unknown pooling '{self.pooling}'; choose from {POOLING}")
        if self.posemb not in POSEMB:
            raise errors.ConfigError(f"unknown posemb '{self.posemb}'; choose from {POSEMB}")
        rows, cols = self.grid
        if tuple(images.shape[1:]) != tuple(self.image_shape):
            raise ValueError(f"images {images.shape} do not match image_shape {self.image_shape}")
        B, D, p = images.shape[0], self.emb_dim, self.patch_size

        x = nn.Conv(
            D, (p, p), strides=(p, p), padding="VALID", dtype=self.dtype, name="patch_embed"
        )(normalize_images(images, self.dtype))  # [B, rows, cols, D]
        x = x.reshape(B, rows * cols, D)
        if self.posemb == "learned":
            table = self.param(
                "posemb",
                nn.with_logical_partitioning(nn.initializers.normal(0.02), (None, "embed")),
                (rows * cols, D),
            )
        else:
            table = jnp.asarray(sincos2d_table(rows, cols, D))
        x = x + table[None].astype(x.dtype)

        prefix = [
            name for name, on in (("cls", self.pooling == "cls"), ("dist", self.distillation)) if on
        ]
        tokens = [
            self.param(
                name,
                nn.with_logical_partitioning(nn.initializers.zeros, (None, None, "embed")),
                (1, 1, D),
            )
            for name in prefix
        ]
        x = jnp.concatenate(
            [jnp.broadcast_to(t, (B, 1, D)).astype(x.dtype) for t in tokens] + [x], 1
        )
        x = nn.with_logical_constraint(x, ("batch", "length", "embed"))  # [B, P + rows*cols, D]
        x = transformer.from_fields(
            self,
            "encoder",
            drop_path_rate=self.drop_path_rate,
            lpi_grid=(rows, cols) if self.lpi else None,
        )(x, deterministic=deterministic)

        features = x[:, 0] if self.pooling == "cls" else x[:, len(prefix) :].mean(axis=1)
        logits = self._head("head", features)  # [B, C]
        if not self.distillation:
            return logits, {}
        dist_logits = self._head("head_dist", x[:, len(prefix) - 1])
        if deterministic:
            return (logits + dist_logits) / 2, {}
        return jnp.stack([logits, dist_logits], axis=1), {}  # [B, 2, C]

    def _head(self, name: str, features: jax.Array) -> jax.Array:
        # Zero-initialised, as in big_vision: every class starts equally likely.
        return nn.Dense(self.num_classes, kernel_init=nn.initializers.zeros, name=name)(
            features.astype(jnp.float32)
        )
