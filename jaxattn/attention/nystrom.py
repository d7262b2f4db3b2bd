"""Nyström attention (Xiong et al. 2021, https://arxiv.org/abs/2102.03902), as used on LRA.

softmax(Q Kᵀ) V is approximated through m landmarks (segment means of the queries and keys):

    out = F · pinv(A) · (B · V),   F = softmax(Q K̃ᵀ), A = softmax(Q̃ K̃ᵀ), B = softmax(Q̃ Kᵀ),

with the Moore–Penrose pseudo-inverse pinv(A) computed by an iterative (Newton–Schulz style)
method, plus an optional depthwise convolution residual on V (kernel 35 in the LRA setup).

Attention dropout: the Nyströmformer authors' code (mlpen/Nystromformer, LRA/code/
attention_nystrom.py) applies no dropout to F, A or B; its `attention_dropout` setting reaches
only the softmax baseline (attention.py's SoftmaxAttention). This kind follows that code: it
declares no dropout, and a `dropout_rate` > 0 raises rather than being ignored. (Which of F, A, B
to drop is not defined by the paper; A is pseudo-inverted, so dropping it would not even be
unbiased.)

Einsum letters are the house shape letters (core.py) plus L and M, both of size m: L indexes
query landmarks Q̃ and M key landmarks K̃. C is a flattened trailing feature axis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxattn import errors
from jaxattn.attention import core

KIND = "nystrom"
PINV_INITS = ("corrected", "original")

# PyTorch's default Conv init (uniform in ±1/sqrt(fan_in), fan_in = kernel size), as in the
# Nyströmformer code, whose depthwise Conv2d has one input channel per group.
_conv_init = jax.nn.initializers.variance_scaling(
    1.0 / 3.0, "fan_in", "uniform", in_axis=0, out_axis=1
)

# pinv(A) can have large entries that cancel: its iteration and the products with it run in true
# float32 even where the default matmul precision would round float32 operands to bfloat16 (TPU).
_HIGHEST = jax.lax.Precision.HIGHEST


def nystrom_attention(
    query: jax.Array,
    key: jax.Array,
    value: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    bias: jax.Array | None = None,
    scale: float | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    num_landmarks: int = 64,
    pinv_iterations: int = 6,
    pinv_init: str = "corrected",
    conv_kernel_size: int | None = None,
    conv_kernel: jax.Array | None = None,
) -> jax.Array:
    """Nyström approximation of softmax attention with m = num_landmarks segment-mean landmarks.

    Paper: Xiong et al. 2021, "Nyströmformer", https://arxiv.org/abs/2102.03902.

    Landmarks: position s of a length-S sequence belongs to segment floor(s·m/S), so any length
    works (S < m leaves some segments empty). A landmark is the mean of the *valid* tokens of its
    segment; a segment with no valid token gives an invalid landmark that is masked everywhere.
    Key landmarks K̃ use `kv_mask`. Query landmarks Q̃: in self-attention (T == S) the key padding
    mask also marks the padded queries, so they are left out of Q̃; for T != S every query counts.
    Invalid key landmarks are masked in F and A, invalid rows/columns of A are zeroed (the
    iteration keeps them zero, so pinv(A) is the pinv of the valid block), padded keys are masked
    in B. With m >= S (each landmark one token) and enough iterations this is exact softmax.

    Args:
      query: [B, T, N, H].
      key, value: [B, S, K, H]; K divides N (GQA/MQA). T != S (cross-attention) is supported,
        except with the convolution residual.
      is_causal: unsupported (raises UnsupportedFeatureError).
      kv_mask: [B, S] bool, True = real key. Also the query padding mask when T == S.
      q_segment_ids, kv_segment_ids: unsupported (packing raises UnsupportedFeatureError).
      bias: unsupported (raises UnsupportedFeatureError).
      scale: logits scale, default 1/sqrt(H).
      dropout_rate, dropout_rng: unsupported, as in the authors' code (module docstring): a rate
        > 0 raises UnsupportedFeatureError. Rate 0 is accepted.
      num_landmarks: m.
      pinv_iterations: steps of Z ← ¼ Z (13I − AZ (15I − AZ (7I − AZ))).
      pinv_init: 'corrected': Z₀ = Aᵀ / (max row-abs-sum · max col-abs-sum); 'original':
        Z₀ = Aᵀ / max column sum. For the row-stochastic A here the two coincide.
      conv_kernel_size: width of the depthwise convolution residual on V (LRA: 35), or None.
      conv_kernel: [conv_kernel_size, K], one filter per kv head shared over H (param_specs).

    Returns:
      [B, T, N, H] in value.dtype. Padded query rows hold finite values; a batch element with no
      valid key returns zeros.

    Masks: key padding (`kv_mask`) only, in self- and cross-attention; GQA/MQA. No causal mask,
    no packing (segment ids), no bias: a landmark mixes many positions, so none of these can be
    honoured, and asking for them raises rather than being ignored.

    Complexity per (batch, head): O((T+S)·m·H + m³) time (times pinv_iterations for the m³ term),
    O((T+S)·m) memory; the convolution adds O(S·conv_kernel_size·H) time.

    Deviations from the reference PyTorch code (mlpen/Nystromformer):
      * landmarks average valid tokens only and any length works (the reference zeroes padded
        Q/K, divides by the full segment length and needs S divisible by m);
      * padded queries are left out of Q̃; landmarks of all-padding segments are masked in F, A
        and pinv(A) (the reference keeps them as zero vectors that still take softmax weight);
      * the pinv initial scaling is computed per [batch, head] matrix; the reference takes the max
        over the whole batch, which makes one example's output depend on the other examples (and
        on how the batch is sharded or micro-batched);
      * no switch to exact softmax when m == S: the same formula runs (tests use it as the limit);
      * masks use the finite core.MASK_VALUE instead of −1e9, scale is applied to the logits
        rather than H^(−1/4) to Q and K (the same in exact arithmetic), the convolution pads
        'SAME' (equal to the reference's padding k//2 for odd k), and with GQA the filter of a kv
        head serves every query head of its group.
    """
    if is_causal:
        raise core.unsupported(KIND, "is_causal=True")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    B, T, S, N, K, H = core.check_inputs(KIND, query, key, value, kv_mask=kv_mask)
    core.reject_dropout(
        KIND,
        dropout_rate,
        "the Nyströmformer authors' code drops none of its softmax kernels F, A, B; set the "
        "model's attention_dropout_rate to 0",
    )
    _check_hparams(num_landmarks, pinv_iterations, pinv_init)
    use_conv = conv_kernel_size is not None or conv_kernel is not None
    if use_conv:
        _check_conv(conv_kernel_size, conv_kernel, T=T, S=S, K=K)
    G = N // K
    m = num_landmarks
    scale = core.default_scale(scale, H)
    f32 = jnp.float32

    q = query.reshape(B, T, K, G, H)
    kv_valid = jnp.ones((B, S), bool) if kv_mask is None else kv_mask.astype(bool)  # [B, S]
    q_valid = kv_valid if T == S else jnp.ones((B, T), bool)  # [B, T]
    k_lm, k_lm_valid = _segment_means(key, kv_valid, m)  # [B, M, K, H], [B, M]
    q_lm, q_lm_valid = _segment_means(q, q_valid, m)  # [B, L, K, G, H], [B, L]

    k_lm_keep = k_lm_valid[:, None, None, None, :]  # [B, 1, 1, 1, M]
    f_logits = jnp.einsum("BTKGH,BMKH->BKGTM", q, k_lm, preferred_element_type=f32) * scale
    f = _masked_softmax(f_logits, k_lm_keep)  # [B, K, G, T, M]
    a_logits = jnp.einsum("BLKGH,BMKH->BKGLM", q_lm, k_lm, preferred_element_type=f32) * scale
    a = _masked_softmax(a_logits, k_lm_keep)  # [B, K, G, L, M]
    a = jnp.where(q_lm_valid[:, None, None, :, None], a, 0.0)  # zero rows of empty query landmarks
    b_logits = jnp.einsum("BLKGH,BSKH->BKGLS", q_lm, key, preferred_element_type=f32) * scale
    b = _masked_softmax(b_logits, kv_valid[:, None, None, None, :])  # [B, K, G, L, S]

    z = iterative_pinv(a, iterations=pinv_iterations, init=pinv_init)  # [B, K, G, M, L]
    bv = jnp.einsum(
        "BKGLS,BSKH->BKGLH", b.astype(value.dtype), value, preferred_element_type=f32
    )  # [B, K, G, L, H]
    # pinv(A)·(B·V) first: O(m²·H) instead of the O(T·m²) of F·pinv(A).
    zbv = jnp.einsum("BKGML,BKGLH->BKGMH", z, bv, precision=_HIGHEST)  # [B, K, G, M, H]
    out = jnp.einsum("BKGTM,BKGMH->BTKGH", f, zbv, precision=_HIGHEST)  # [B, T, K, G, H]

    if use_conv:
        conv = _conv_residual(value, kv_valid, conv_kernel)  # [B, S, K, H]; T == S was checked
        out = out + conv[:, :, :, None, :]  # a kv head's filter serves its G query heads
    return out.reshape(B, T, N, H).astype(value.dtype)


def iterative_pinv(a: jax.Array, *, iterations: int = 6, init: str = "corrected") -> jax.Array:
    """Moore–Penrose pseudo-inverse of each matrix a [..., L, M] by iteration; returns [..., M, L].

    Z ← ¼ Z (13I − AZ (15I − AZ (7I − AZ))) from Z₀ = Aᵀ / c, with c per matrix:
    'corrected': c = max row-abs-sum · max col-abs-sum (≥ σ_max², so the iteration converges for
    any A); 'original': c = max column sum (the same for row-stochastic A). Zero rows and columns
    of A stay zero columns and rows of Z. An all-zero matrix gives zeros. Runs in float32.
    """
    if init not in PINV_INITS:
        raise errors.ConfigError(f"{KIND}: pinv_init must be one of {PINV_INITS}; got {init!r}")
    a = a.astype(jnp.float32)
    if init == "corrected":
        abs_a = jnp.abs(a)
        max_row_sum = jnp.max(jnp.sum(abs_a, axis=-1), axis=-1)  # [...]
        max_col_sum = jnp.max(jnp.sum(abs_a, axis=-2), axis=-1)  # [...]
        c = max_row_sum * max_col_sum
    else:
        c = jnp.max(jnp.sum(a, axis=-2), axis=-1)  # [...]
    c = jnp.where(c != 0, c, 1.0)  # an all-zero (fully masked) matrix keeps Z = 0
    z = jnp.swapaxes(a, -1, -2) / c[..., None, None]  # [..., M, L]
    eye = jnp.eye(a.shape[-2], dtype=jnp.float32)  # [L, L]

    def mm(x: jax.Array, y: jax.Array) -> jax.Array:
        return jnp.matmul(x, y, precision=_HIGHEST)

    for _ in range(iterations):
        az = mm(a, z)  # [..., L, L]
        z = 0.25 * mm(z, 13 * eye - mm(az, 15 * eye - mm(az, 7 * eye - az)))
    return z


def param_specs(
    hparams: Mapping[str, Any], *, num_heads: int, num_kv_heads: int, head_dim: int, kv_length: int
) -> dict[str, core.ParamSpec]:
    """The depthwise convolution kernel [conv_kernel_size, K] when conv_kernel_size is set."""
    del num_heads, head_dim, kv_length  # one filter per kv head, shared over H, any length
    width = hparams.get("conv_kernel_size")
    if width is None:
        return {}
    if not isinstance(width, int) or width < 1:
        raise errors.ConfigError(
            f"{KIND}: conv_kernel_size must be a positive int or None; got {width!r}"
        )
    return {"conv_kernel": core.ParamSpec((width, num_kv_heads), _conv_init, (None, "heads"))}


def _check_hparams(num_landmarks: int, pinv_iterations: int, pinv_init: str) -> None:
    if not isinstance(num_landmarks, int) or num_landmarks < 1:
        raise errors.ConfigError(
            f"{KIND}: num_landmarks must be a positive int; got {num_landmarks!r}"
        )
    if not isinstance(pinv_iterations, int) or pinv_iterations < 0:
        raise errors.ConfigError(
            f"{KIND}: pinv_iterations must be an int >= 0; got {pinv_iterations!r}"
        )
    if pinv_init not in PINV_INITS:
        raise errors.ConfigError(
            f"{KIND}: pinv_init must be one of {PINV_INITS}; got {pinv_init!r}"
        )


def _check_conv(width: int | None, kernel: jax.Array | None, *, T: int, S: int, K: int) -> None:
    if kernel is None:
        raise ValueError(
            f"{KIND}: conv_kernel_size={width} but no conv_kernel was passed; the layer must create "
            "it from param_specs() and pass conv_kernel=[conv_kernel_size, K]"
        )
    expected = (kernel.shape[0] if width is None else width, K)
    if kernel.shape != expected:
        raise ValueError(
            f"{KIND}: conv_kernel must be [conv_kernel_size, K] = {expected}; got {kernel.shape}"
        )
    if T != S:
        raise ValueError(
            f"{KIND}: the convolution residual adds conv(V) to the outputs, so it needs T == S; got "
            f"T={T}, S={S} (set conv_kernel_size=None for cross-attention)"
        )


def _segment_means(x: jax.Array, valid: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
    """Means of the valid rows of x [B, S, ...] over m contiguous segments: ([B, m, ...], [B, m] bool)."""
    B, S = x.shape[:2]
    segment = (jnp.arange(S) * m) // S  # [S]: position s is in segment floor(s·m/S)
    member = (segment[:, None] == jnp.arange(m)[None, :])[None] & valid[:, :, None]  # [B, S, M]
    sums = jnp.einsum(
        "BSC,BSM->BMC",
        x.reshape(B, S, -1),
        member.astype(x.dtype),
        preferred_element_type=jnp.float32,
    )  # [B, M, C]
    counts = jnp.sum(member, axis=1, dtype=jnp.float32)  # [B, M]
    means = sums / jnp.maximum(counts, 1.0)[:, :, None]
    return means.astype(x.dtype).reshape(B, m, *x.shape[2:]), counts > 0


def _masked_softmax(logits: jax.Array, keep: jax.Array) -> jax.Array:
    """Softmax over the last axis; masked entries, and rows with nothing kept, are exactly 0."""
    probs = jax.nn.softmax(jnp.where(keep, logits, core.MASK_VALUE), axis=-1)
    return jnp.where(keep, probs, 0.0)


def _conv_residual(value: jax.Array, valid: jax.Array, kernel: jax.Array) -> jax.Array:
    """Depthwise 'SAME' convolution of the masked V along S, one filter per kv head: [B, S, K, H] f32.

    Computed with real FFTs of length S + W: on CPU, XLA's grouped convolution (K·H groups) was
    6x slower and 35 shifted multiply-adds 2.7x slower than this at S=2000, W=35 (fwd+bwd).
    tests/attention/nystrom_test.py holds it to a direct convolution.
    """
    S, W = value.shape[1], kernel.shape[0]
    left = (W - 1) // 2  # 'SAME': output s sees inputs s - left .. s - left + W - 1
    v = jnp.where(valid[:, :, None, None], value, 0).astype(jnp.float32)
    n = S + W
    # Cross-correlation = convolution with the reversed kernel.
    spectrum = (
        jnp.fft.rfft(v, n=n, axis=1)
        * jnp.fft.rfft(kernel[::-1].astype(jnp.float32), n=n, axis=0)[None, :, :, None]
    )
    y = jnp.fft.irfft(spectrum, n=n, axis=1)  # [B, n, K, H]; full convolution
    return y[:, W - 1 - left : W - 1 - left + S]
