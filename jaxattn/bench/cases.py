"""Benchmark cases: one attention target at one shape, dtype and mask pattern.

A target is a registry kind (`softmax_chunked`) or a reference point a user would pick instead:
`ref:jax_dpa` (jax.nn.dot_product_attention), `ref:torch_sdpa`
(torch.nn.functional.scaled_dot_product_attention on CPU, when torch is installed) and
`ref:matmul` (a square jit'd matmul of about the same FLOP count: the machine's ceiling).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

MASKS = ("none", "causal", "padding", "packed")
REFERENCES = ("ref:jax_dpa", "ref:torch_sdpa", "ref:matmul")
# Kinds whose output is not an approximation of softmax attention: no error column for them.
NOT_SOFTMAX_APPROXIMATIONS = {
    "linear": "elu+1 kernel attention has no softmax limit",
    "synthesizer": "logits are learned or random, not Q·Kᵀ",
    "linformer": "learned length projections",
    "fnet": "a Fourier token mixer",
}
PACKED_SEGMENTS = 4  # the 'packed' pattern: T split into this many equal segments
PADDED_FRACTION = 0.25  # the 'padding' pattern: the last quarter of the keys are padding


@dataclasses.dataclass(frozen=True)
class Case:
    target: str  # registry kind or one of REFERENCES
    seq_len: int
    batch: int = 1
    heads: int = 8
    head_dim: int = 64
    dtype: str = "float32"
    mask: str = "none"
    repeats: int = 5
    backward: bool = True
    error_max_len: int = 2048  # float64 reference only up to this length (it is O(T²))
    memory_limit_bytes: int = 16 << 30
    hparams: str = ""  # JSON object of the kind's hyper-parameters ("" = the kind's defaults)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Case:
        return cls(**json.loads(text))

    @property
    def label(self) -> str:
        extra = f" {self.hparams}" if self.hparams else ""
        return (
            f"{self.target}{extra} T={self.seq_len} {self.mask} {self.dtype} "
            f"B={self.batch} N={self.heads} H={self.head_dim}"
        )


def seq_lens(start: int, stop: int) -> list[int]:
    """start, 2·start, ... up to stop (inclusive)."""
    out, t = [], start
    while t <= stop:
        out.append(t)
        t *= 2
    return out


def attention_flops(case: Case) -> dict[str, float]:
    """Model FLOPs of exact attention (the convention FlashAttention and PyTorch report).

    Forward: two matmuls Q·Kᵀ and P·V, 2·T·S·H each per head, so 4·B·N·T·S·H; causal halves it.
    Forward+backward: 3.5× the forward (the backward recomputes Q·Kᵀ and does four more matmuls).
    """
    fwd = 4.0 * case.batch * case.heads * case.seq_len * case.seq_len * case.head_dim
    if case.mask == "causal":
        fwd /= 2
    return {"forward": fwd, "forward_backward": 3.5 * fwd}


def matmul_size(case: Case) -> int:
    """Side n of the square matmul with about the forward's FLOPs (2·n³), in [256, 4096]."""
    n = int(round((attention_flops(case)["forward"] / 2) ** (1 / 3) / 128)) * 128
    return int(min(max(n, 256), 4096))


def inputs(case: Case, seed: int = 0) -> dict[str, np.ndarray]:
    """q, k, v as [B, T, N, H] float32 numpy arrays, and the mask arrays of the pattern."""
    rng = np.random.default_rng(seed)
    shape = (case.batch, case.seq_len, case.heads, case.head_dim)
    arrays: dict[str, Any] = {n: rng.standard_normal(shape, np.float32) for n in ("q", "k", "v")}
    arrays["cotangent"] = rng.standard_normal(shape, np.float32)
    T = case.seq_len
    if case.mask == "padding":
        real = T - int(T * PADDED_FRACTION)
        arrays["kv_mask"] = np.broadcast_to(np.arange(T) < real, (case.batch, T)).copy()
    elif case.mask == "packed":
        ids = np.arange(T) * PACKED_SEGMENTS // T
        arrays["segment_ids"] = np.broadcast_to(ids, (case.batch, T)).astype(np.int32)
    return arrays


def keep_mask(case: Case, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The dense [B, T, S] visibility of the pattern (for references that take a dense mask)."""
    T = case.seq_len
    keep = np.ones((case.batch, T, T), bool)
    if case.mask == "causal":
        keep &= np.tril(np.ones((T, T), bool))[None]
    if "kv_mask" in arrays:
        keep &= arrays["kv_mask"][:, None, :]
    if "segment_ids" in arrays:
        ids = arrays["segment_ids"]
        keep &= ids[:, :, None] == ids[:, None, :]
    return keep


def reference_float64(case: Case, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Exact softmax attention in float64 numpy, [B, T, N, H] (one head at a time)."""
    q, k, v = (arrays[n].astype(np.float64) for n in ("q", "k", "v"))
    keep = keep_mask(case, arrays)
    out = np.zeros_like(q)
    scale = 1.0 / np.sqrt(case.head_dim)
    for b in range(case.batch):
        for n in range(case.heads):
            logits = q[b, :, n] @ k[b, :, n].T * scale
            logits = np.where(keep[b], logits, -np.inf)
            logits -= logits.max(axis=-1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=-1, keepdims=True)
            out[b, :, n] = p @ v[b, :, n]
    return out
