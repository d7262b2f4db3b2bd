"""FNet Fourier token mixing (Lee-Thorp et al. 2021, https://arxiv.org/abs/2105.03824).

A token mixer (registry family 'mixer'): it replaces the whole attention sublayer, including the
query/key/value and output projections, by the real part of a 2-D discrete Fourier transform,

    y = Re(FFT_T(FFT_D(x))) = Re(F_T · X · F_D),   F_L[a, c] = exp(-2πi·a·c / L),

over the sequence axis T and the hidden axis D. It has no parameters.

Padding: the DFT along T mixes every position into every other, pads included, and the result
depends on the padded length. The paper trains on fixed-length inputs. So `kv_mask` raises
unless the caller opts in with `allow_padding_mixing=True`, which runs the same transform over the
padded sequence and leaves the pads in the mix. That is how FNet's Long Range Arena numbers were
obtained (padded LRA inputs through the unchanged Fourier layer), so configs/lra_fnet.py opts in.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxattn.attention import core

KIND = "fnet"


def fnet_mixing(
    x: jax.Array,
    *,
    is_causal: bool = False,
    kv_mask: jax.Array | None = None,
    q_segment_ids: jax.Array | None = None,
    kv_segment_ids: jax.Array | None = None,
    bias: jax.Array | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    allow_padding_mixing: bool = False,
) -> jax.Array:
    """FNet's parameter-free Fourier mixing: the real part of the 2-D DFT over (T, D).

    Paper: Lee-Thorp et al. 2021, "FNet: Mixing Tokens with Fourier Transforms",
    https://arxiv.org/abs/2105.03824.

    Args:
      x: [B, T, D].
      is_causal: unsupported (raises): every output mixes every position (see `fnet_ar`).
      kv_mask: [B, T] bool. Raises unless allow_padding_mixing=True; with it the mask is accepted
        and NOT applied: padded positions are mixed into the real ones, as in FNet on LRA.
      q_segment_ids, kv_segment_ids: unsupported (packing raises): segments would be mixed.
      bias: unsupported (raises): there are no attention logits.
      dropout_rate, dropout_rng: unsupported: there are no attention probabilities to drop, so
        a rate > 0 raises UnsupportedFeatureError. Rate 0 is accepted.
      allow_padding_mixing: the explicit opt-in to run on padded batches (see kv_mask).

    Returns:
      [B, T, D] in x.dtype (the FFTs run in float32 / complex64).

    Masks: none honoured; key padding only with the allow_padding_mixing opt-in.

    Complexity: O(T·D·(log T + log D)) time, O(T·D) memory per example.
    """
    if is_causal:
        raise core.unsupported(KIND, "is_causal=True")
    if q_segment_ids is not None or kv_segment_ids is not None:
        raise core.unsupported(KIND, "q_segment_ids/kv_segment_ids (packing)")
    if bias is not None:
        raise core.unsupported(KIND, "bias")
    core.reject_dropout(KIND, dropout_rate, "Fourier mixing forms no attention probabilities")
    if x.ndim != 3:
        raise ValueError(f"{KIND}: x must be [B, T, D]; got {x.shape}")
    if kv_mask is not None:
        if not allow_padding_mixing:
            raise core.unsupported(
                KIND,
                "kv_mask (the Fourier transform mixes pads into real tokens; set "
                "allow_padding_mixing=True to accept that, as FNet did on LRA)",
            )
        if kv_mask.shape != x.shape[:2]:
            raise ValueError(f"{KIND}: kv_mask must be [B, T] = {x.shape[:2]}; got {kv_mask.shape}")
    y = jnp.fft.fft2(x.astype(jnp.float32), axes=(1, 2))  # [B, T, D] complex64
    return jnp.real(y).astype(x.dtype)
