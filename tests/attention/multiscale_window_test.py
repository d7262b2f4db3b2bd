"""Multi-scale window attention: every head equals `local` with its window (causal, padded and
packed too), a head whose window covers the sequence equals softmax, GQA heads read their kv head."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxattn import errors
from jaxattn.attention import local, multiscale_window, softmax
from tests.attention import battery_cases as cases

WINDOWS = (1, 3, 0, 20)  # the last covers T = 12: softmax


@pytest.mark.parametrize("is_causal", [False, True], ids=["bidirectional", "causal"])
def test_every_head_equals_local_with_its_window(is_causal):
    B, T, N, K, H = 2, 12, 6, 3, 8  # heads cycle through WINDOWS: 1, 3, 0, 20, 1, 3
    q, k, v = cases.qkv(B, T, T, N, K, H, seed=0)
    kv_mask = cases.padding_mask(B, T)
    out = multiscale_window.multiscale_window_attention(
        q, k, v, kv_mask=kv_mask, is_causal=is_causal, window_sizes=WINDOWS
    )
    G = N // K
    for n in range(N):
        w = WINDOWS[n % len(WINDOWS)]
        sl = slice(n // G, n // G + 1)
        alone = local.local_attention(
            q[:, :, n : n + 1], k[:, :, sl], v[:, :, sl], kv_mask=kv_mask, is_causal=is_causal,
            window_size=min(w, T - 1),
        )  # fmt: skip
        cases.assert_close(
            cases.real_rows(out[:, :, n : n + 1], kv_mask), cases.real_rows(alone, kv_mask),
            1e-6, f"head {n} (w={w})",
        )  # fmt: skip
        if w >= T - 1:
            full = softmax.softmax_attention(
                q[:, :, n : n + 1], k[:, :, sl], v[:, :, sl], kv_mask=kv_mask, is_causal=is_causal
            )
            cases.assert_close(
                cases.real_rows(out[:, :, n : n + 1], kv_mask), cases.real_rows(full, kv_mask),
                1e-6, f"global head {n}",
            )  # fmt: skip


def test_window_zero_is_the_value_itself_and_windows_restrict():
    """w = 0: each token sees only itself (output = its value); w = 1 ignores distant keys."""
    B, T, N, H = 1, 10, 2, 4
    q, k, v = cases.qkv(B, T, T, N, N, H, seed=1)
    out = multiscale_window.multiscale_window_attention(q, k, v, window_sizes=(0, 1))
    np.testing.assert_allclose(out[:, :, 0], v[:, :, 0], atol=1e-6)
    v2 = v.at[:, 5:].set(100.0)  # far from t <= 3
    out2 = multiscale_window.multiscale_window_attention(q, k, v2, window_sizes=(0, 1))
    np.testing.assert_allclose(out2[:, :4, 1], out[:, :4, 1], atol=1e-6)


def test_bf16_and_jit():
    q, k, v = cases.qkv(2, 16, 16, 4, 2, 8, dtype=jnp.bfloat16, seed=2)
    fn = jax.jit(multiscale_window.multiscale_window_attention, static_argnames="window_sizes")
    out = fn(q, k, v, window_sizes=(2, 15))
    assert out.dtype == jnp.bfloat16 and bool(jnp.all(jnp.isfinite(out.astype(jnp.float32))))


def test_refusals():
    q, k, v = cases.qkv(1, 8, 8, 2, 2, 4)
    with pytest.raises(errors.UnsupportedFeatureError, match="multiscale_window.*bias"):
        multiscale_window.multiscale_window_attention(q, k, v, bias=jnp.zeros((1, 2, 8, 8)))
    q2, k2, v2 = cases.qkv(1, 8, 6, 2, 2, 4)
    with pytest.raises(errors.UnsupportedFeatureError, match="multiscale_window.*cross"):
        multiscale_window.multiscale_window_attention(q2, k2, v2)
    with pytest.raises(errors.ConfigError):
        multiscale_window.multiscale_window_attention(q, k, v, window_sizes=())
