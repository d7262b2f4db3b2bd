"""LM rows from documents: every token after a document's first is a target exactly once, in
both modes; packed rows carry segment ids and pad only the last row."""

from __future__ import annotations

import numpy as np
import pytest

from jaxattn.data import packing
from jaxattn.tasks import next_token


def _documents(seed=0, n=12):
    rng = np.random.default_rng(seed)
    return [rng.integers(1, 200, rng.integers(1, 40)) for _ in range(n)]


def _targets(rows, L):
    """(document-local context id, target) pairs predicted by the rows, as a multiset."""
    out = []
    for i in range(len(rows)):
        row = next_token.make_row(rows[i], L)
        out.extend(int(t) for t, w in zip(row["targets"], row["weights"], strict=True) if w > 0)
    return sorted(out)


@pytest.mark.parametrize("mode", packing.MODES)
@pytest.mark.parametrize("L", [1, 7, 16, 64])
def test_every_token_but_each_documents_first_is_predicted_once(mode, L):
    docs = _documents()
    rows = packing.DocumentRows(docs, seq_len=L, mode=mode)
    expected = sorted(int(t) for d in docs if len(d) >= 2 for t in d[1:])
    assert _targets(rows, L) == expected
    stats = rows.stats()
    assert stats["predicted_tokens"] == len(expected)
    assert stats["rows"] == len(rows)
    total = stats["target_positions"]
    assert np.isclose(
        stats["padding_fraction"] + stats["boundary_fraction"], 1 - len(expected) / total
    )


def test_packed_rows_share_documents_and_pad_only_the_last_row():
    docs = [np.arange(1, 6), np.arange(10, 13), np.arange(20, 30)]  # 5 + 3 + 10 = 18 tokens
    rows = packing.DocumentRows(docs, seq_len=8, mode="packed")
    assert len(rows) == 3  # ceil(17 / 8)
    first = rows[0]
    np.testing.assert_array_equal(first["tokens"], [1, 2, 3, 4, 5, 10, 11, 12, 20])
    np.testing.assert_array_equal(first["segment_ids"], [1, 1, 1, 1, 1, 2, 2, 2, 3])
    second = rows[1]  # starts at the first row's last token (rows overlap by one)
    assert second["tokens"][0] == 20 and second["segment_ids"][0] == 1
    last = rows[2]
    np.testing.assert_array_equal(last["tokens"], [28, 29, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(last["segment_ids"], [1, 1, 0, 0, 0, 0, 0, 0, 0])
    row = next_token.make_row(first, 8)
    # Boundaries 5 -> 10 and 12 -> 20 are not predicted; positions restart per document.
    np.testing.assert_array_equal(row["weights"], [1, 1, 1, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(row["positions"], [0, 1, 2, 3, 4, 0, 1, 2])


def test_padded_rows_hold_one_document_each():
    docs = [np.arange(1, 12), np.arange(20, 23)]
    rows = packing.DocumentRows(docs, seq_len=4, mode="padded")
    assert len(rows) == 3 + 1  # 11 tokens: windows at 0, 4, 8; 3 tokens: one window
    np.testing.assert_array_equal(rows[2]["tokens"], [9, 10, 11, 0, 0])
    np.testing.assert_array_equal(rows[3]["segment_ids"], [1, 1, 1, 0, 0])
    stats = rows.stats()
    assert stats["boundary_fraction"] == 0 and stats["padding_fraction"] == 4 / 16


def test_bad_arguments():
    with pytest.raises(ValueError, match="packing mode"):
        packing.DocumentRows([], seq_len=4, mode="greedy")
    with pytest.raises(IndexError):
        packing.DocumentRows([np.arange(1, 4)], seq_len=4)[1]
    assert len(packing.DocumentRows([np.array([5])], seq_len=4)) == 0  # nothing to predict
