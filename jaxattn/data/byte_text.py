"""LRA's byte-level text encoding: each byte + 1, 0 = padding, vocabulary 257.

This is tfds's `ByteTextEncoder` (`pad_incr(list(bytearray(s)))`) as LRA-code uses it for Text and
Retrieval, written with numpy so no TensorFlow is needed (LRA.md pitfall 2). Ids run 1..256, so
they are stored as uint16 (byte 255 is id 256).
"""

from __future__ import annotations

import numpy as np

VOCAB_SIZE = 257  # 256 byte values + 1; id 0 = padding, never a byte
DTYPE = np.uint16  # how the ids are stored


def encode(text: bytes) -> np.ndarray:
    """Bytes -> ids byte + 1, uint16 [n]."""
    return np.frombuffer(text, np.uint8).astype(DTYPE) + 1


def decode(ids: np.ndarray) -> bytes:
    """The inverse of `encode`; padding ids (0) are dropped."""
    ids = np.asarray(ids)
    return (ids[ids != 0] - 1).astype(np.uint8).tobytes()
