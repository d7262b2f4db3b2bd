"""Float64 NumPy references and jaxpr probes shared by the per-kind attention tests."""

from __future__ import annotations

import jax
import numpy as np


def dense_softmax(q, k, v, mask: np.ndarray) -> np.ndarray:
    """float64 softmax attention with a dense [B, T, S] (or per head [B, N, T, S]) mask; a fully
    masked row gives zeros."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    G = q.shape[2] // k.shape[2]
    k, v = np.repeat(k, G, axis=2), np.repeat(v, G, axis=2)
    logits = np.einsum("BTNH,BSNH->BNTS", q, k) / np.sqrt(q.shape[-1])
    mask = np.asarray(mask)
    logits = np.where(mask[:, None] if mask.ndim == 3 else mask, logits, -np.inf)
    top = np.max(logits, axis=-1, keepdims=True)
    p = np.exp(logits - np.where(np.isfinite(top), top, 0.0))
    total = p.sum(-1, keepdims=True)
    p = p / np.where(total > 0, total, 1.0)
    return np.einsum("BNTS,BSNH->BTNH", p, v)


def real_rows(x, kv_mask) -> np.ndarray:
    """x [B, T, N, H] as float64 with the padded query rows zeroed."""
    return np.where(np.asarray(kv_mask)[:, :, None, None], np.asarray(x, np.float64), 0.0)


def max_err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def largest_intermediate(fn, *args) -> int:
    """The element count of the largest array any equation of fn's jaxpr (recursively) makes."""

    def walk(jaxpr) -> int:
        biggest = 0
        for eqn in jaxpr.eqns:
            for var in eqn.outvars:
                biggest = max(biggest, int(np.prod(var.aval.shape, dtype=np.int64)))
            for param in eqn.params.values():
                for sub in param if isinstance(param, tuple | list) else (param,):
                    inner = getattr(sub, "jaxpr", sub)
                    if hasattr(inner, "eqns"):
                        biggest = max(biggest, walk(inner))
        return biggest

    return walk(jax.make_jaxpr(fn)(*args).jaxpr)
