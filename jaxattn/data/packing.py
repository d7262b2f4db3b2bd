"""Language-model rows cut from variable-length documents: packed, or one document per row.

A row is `seq_len + 1` tokens (the model reads the first L and predicts the last L), and rows of
one document overlap by one token (stride L), so every token of a document but its first is a
target exactly once, in either mode:

  'packed' (padding-free, the ByteTransformer idea): the split's documents are concatenated and
      cut into consecutive rows, so a row may hold the end of one document and the start of the
      next. `segment_ids` number the documents inside a row 1, 2, ... (0 = padding, only in the
      split's last row); attention must not cross them and the loss skips the prediction across
      a boundary (`tasks/next_token.make_row`).
  'padded': every document is cut on its own; its last row is padded with 0. Segment ids are 1
      for tokens and 0 for padding, so a causal model needs no segment masking.

    rows = packing.DocumentRows(documents, seq_len=512, mode='packed')
    rows[i] -> {'tokens': int32 [513], 'segment_ids': int32 [513]}   (a `pipeline.Source`)

Shape letters: L = seq_len, R = rows, N = total tokens of the split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

MODES = ("packed", "padded")


class DocumentRows:
    """Random access to the LM rows of a list of documents (module docstring).

    Args:
      documents: token id arrays (ids > 0; 0 is padding), one per document. Documents of fewer
        than two tokens hold no prediction and are dropped.
      seq_len: L, the model's input length; rows are L + 1 tokens.
      mode: 'packed' | 'padded'.
    """

    def __init__(self, documents: Sequence[np.ndarray], *, seq_len: int, mode: str = "packed"):
        if mode not in MODES:
            raise ValueError(f"unknown packing mode '{mode}'; choose from {MODES}")
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1; got {seq_len}")
        docs = [np.asarray(d) for d in documents if len(d) >= 2]
        self.seq_len, self.mode = seq_len, mode
        self._row_len = seq_len + 1
        if mode == "packed":
            # Tokens keep their stored dtype (uint16 for bytes + 1) and documents are told apart
            # by their start offsets: 2 bytes per token for a large corpus, not 8.
            self._tokens = np.concatenate(docs) if docs else np.zeros(0, np.int32)  # [N]
            self._starts = np.cumsum([0] + [len(d) for d in docs], dtype=np.int64)[:-1]
            # Row r covers [r * L, r * L + L + 1): ceil((N - 1) / L) rows predict all N - 1.
            self._num_rows = -(-(len(self._tokens) - 1) // seq_len) if docs else 0
        else:
            self._docs = docs
            # (document, start) of every row: starts 0, L, 2L, ... while a target remains.
            self._windows = [
                (i, start) for i, d in enumerate(docs) for start in range(0, len(d) - 1, seq_len)
            ]
            self._num_rows = len(self._windows)

    def __len__(self) -> int:
        return self._num_rows

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self._num_rows:
            raise IndexError(f"row {index} out of range [0, {self._num_rows})")
        tokens = np.zeros(self._row_len, np.int32)
        segments = np.zeros(self._row_len, np.int32)
        if self.mode == "packed":
            start = index * self.seq_len
            chunk = self._tokens[start : start + self._row_len]
            positions = np.arange(start, start + len(chunk))
            docs = np.searchsorted(self._starts, positions, side="right")
            tokens[: len(chunk)] = chunk
            segments[: len(chunk)] = docs - docs[0] + 1  # documents in the row: 1, 2, ...
        else:
            doc, start = self._windows[index]
            chunk = self._docs[doc][start : start + self._row_len]
            tokens[: len(chunk)] = chunk
            segments[: len(chunk)] = 1
        return {"tokens": tokens, "segment_ids": segments}

    def stats(self) -> dict[str, float]:
        """Target positions over all rows: predicted, padding and document-boundary shares."""
        total = self._num_rows * self.seq_len
        if self.mode == "packed":
            predicted = len(self._tokens) - len(self._starts)
        else:
            predicted = sum(len(d) - 1 for d in self._docs)
        if self.mode == "packed":
            padding = total - (len(self._tokens) - 1)
        else:
            padding = total - predicted
        boundary = total - predicted - padding
        return {
            "rows": float(self._num_rows),
            "target_positions": float(total),
            "predicted_tokens": float(predicted),
            "padding_fraction": padding / max(total, 1),
            "boundary_fraction": boundary / max(total, 1),
        }
