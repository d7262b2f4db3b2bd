"""FNetAR: causal (autoregressive) Fourier token mixing.

Lou, Park, Ramezanali, Tang 2021, "FNetAR: Mixing Tokens with Autoregressive Fourier Transforms",
https://arxiv.org/abs/2107.10932. A token mixer (registry family 'mixer', like `fnet`): it
replaces the attention sublayer by a parameter-free Fourier transform in which each position mixes
only its prefix, so nothing leaks from the future.

Construction used here. FNet (fnet.py) gives position t the t-th frequency of the DFT of the whole
sequence, y = Re(F_T · X · F_D). The autoregressive version gives position t the t-th (= last)
frequency of the DFT of its own prefix x_0 … x_t (length t + 1):

    A[t, s] = exp(-2πi · t · s / (t + 1))  for s <= t,   0 for s > t      (lower-triangular, T×T)
    y = Re(A · X · F_D),   F_D[d, e] = exp(-2πi · d · e / D)

Row t of A is the last row of the (t + 1)-point DFT matrix, so the last position (t = T − 1) is
exactly FNet's last row, Re(F_T · X · F_D)[T − 1], and every earlier row is the same construction
applied to the sequence truncated after it (the note's "each position's mixing restricted to its
prefix"). Note exp(-2πi·t·s/(t+1)) = exp(+2πi·s/(t+1)): position t reads its prefix through one
full period of the lowest frequency, a uniform sampling of the unit circle at t + 1 points.

Caveat: the note's PDF could not be read from this environment (only its abstract); this is the
construction the abstract and the catalog describe (the prefix DFT at the query's own position),
chosen so the last position equals full FNet mixing. No public code of the authors was found, so
no numbers were compared.

Packing: with segment ids, positions t and s are counted from the start of their segment and only
same-segment pairs mix, so a packed segment equals the segment run alone. Key padding: padded
tokens are zeroed before mixing (they still count as positions, so right padding is exact).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxattn.attention import core

KIND = "fnet_ar"


def fnet_ar_mixing(
    x: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    bias: jax.Array | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    hidden_fft: bool = True,
) -> jax.Array:
    """FNetAR's causal Fourier mixing: y = Re(A · X · F_D), A the lower-triangular prefix DFT.

    Args:
      x: [B, T, D].
      is_causal: accepted either way: the mixing is always causal (position t reads s <= t), so a
        bidirectional call gets the same causal mixing (a stricter mask, never a leak).
      kv_mask: [B, T] bool, True = real token; padded tokens are zeroed before mixing, so real
        outputs never depend on the pads' values.
      q_segment_ids, kv_segment_ids: [B, T] packing (contiguous segments; kv ids, if given, must be
        the same as the q ids: a mixer has one sequence). Positions restart at each segment.
      bias: unsupported (raises): there are no attention logits.
      dropout_rate, dropout_rng: unsupported for a rate > 0 (no attention probabilities).
      hidden_fft: also apply FNet's DFT over the hidden axis D (default, as in FNet). False mixes
        tokens only: y = Re(A · X).

    Returns:
      [B, T, D] in x.dtype (the transforms run in float32 / complex64).

    Masks: causal (always), key padding, packing. No bias, no dropout.

    Complexity: O(T²·D + T·D·log D) time, O(T² + T·D) memory (the T×T prefix DFT is dense; the
    note's recurrent form would be O(T·D) per step at decoding, not implemented here).
    """
    del is_causal  # always causal
    if bias is not None:
        raise core.unsupported(KIND, "bias: FNetAR forms no attention logits")
    core.reject_dropout(KIND, dropout_rate, "Fourier mixing forms no attention probabilities")
    if x.ndim != 3:
        raise ValueError(f"{KIND}: x must be [B, T, D]; got {x.shape}")
    B, T, _ = x.shape
    for name, m in (("kv_mask", kv_mask), ("q_segment_ids", q_segment_ids)):
        if m is not None and m.shape != (B, T):
            raise ValueError(f"{KIND}: {name} must be [B, T] = {(B, T)}; got {m.shape}")
    if kv_segment_ids is not None and q_segment_ids is None:
        raise ValueError(f"{KIND}: kv_segment_ids given without q_segment_ids")
    xf = x.astype(jnp.float32)
    if kv_mask is not None:
        xf = jnp.where(kv_mask[:, :, None], xf, 0.0)
    cos, sin = prefix_dft(T, q_segment_ids)  # [B|1, T, T] each: A = cos - i·sin
    hp = jax.lax.Precision.HIGHEST
    real = jnp.einsum("BTS,BSD->BTD", cos, xf, precision=hp)
    imag = -jnp.einsum("BTS,BSD->BTD", sin, xf, precision=hp)
    if not hidden_fft:
        return real.astype(x.dtype)
    y = jnp.fft.fft(jax.lax.complex(real, imag), axis=-1)  # [B, T, D] complex64
    return jnp.real(y).astype(x.dtype)


def prefix_dft(T: int, segment_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """(cos θ, sin θ) with A[t, s] = exp(-iθ[t, s]) = exp(-2πi·t·s/(t + 1)) for s <= t (in the same
    segment, positions counted from its start), 0 elsewhere; [1, T, T] or [B, T, T] float32. The
    angle uses (t·s mod (t + 1)) so it stays in [0, 2π) and exact in integers."""
    if segment_ids is None:
        pos = jnp.arange(T)[None]  # [1, T]
        same = jnp.ones((1, T, T), bool)
    else:
        pos = _position_in_segment(segment_ids)  # [B, T]
        same = segment_ids[:, :, None] == segment_ids[:, None, :]
    t, s = pos[:, :, None], pos[:, None, :]
    keep = same & (jnp.arange(T)[:, None] >= jnp.arange(T)[None, :])[None]
    theta = 2.0 * jnp.pi * ((t * s) % (t + 1)).astype(jnp.float32) / (t + 1).astype(jnp.float32)
    return jnp.where(keep, jnp.cos(theta), 0.0), jnp.where(keep, jnp.sin(theta), 0.0)


def _position_in_segment(ids: jax.Array) -> jax.Array:
    """Position of each token within its (contiguous) segment, [B, T] int32."""
    idx = jnp.arange(ids.shape[1])
    start = jnp.concatenate([jnp.ones_like(ids[:, :1], bool), ids[:, 1:] != ids[:, :-1]], axis=1)
    return idx[None] - jax.lax.cummax(jnp.where(start, idx[None], 0), axis=1)
