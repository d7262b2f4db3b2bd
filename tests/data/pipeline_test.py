"""Training and evaluation batches: determinism, resume, reshuffle, padding, process sharding."""

import itertools

import numpy as np
import pytest

from jaxattn import errors
from jaxattn.data import pipeline


def _source(num_examples, *, max_len=7):
    """Records whose label is their index, so a batch's targets say which examples it holds."""
    rng = np.random.default_rng(0)
    return [
        {
            "tokens": rng.integers(1, 16, size=int(rng.integers(1, max_len + 1)), dtype=np.uint8),
            "label": index,
        }
        for index in range(num_examples)
    ]


def _take(iterator, count):
    return list(itertools.islice(iterator, count))


def _train(source, count, **kwargs):
    kwargs = {"batch_size": 4, "seq_len": 5, "seed": 0, **kwargs}
    return _take(pipeline.train_batches(source, **kwargs), count)


def _assert_batches_equal(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a.keys() == e.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], e[name])


def test_train_batch_shapes_dtypes_and_padding():
    source = _source(10)
    (batch,) = _train(source, 1, seq_len=5)
    assert batch["inputs"].shape == (4, 5) and batch["inputs"].dtype == np.int32
    assert batch["targets"].shape == (4,) and batch["targets"].dtype == np.int32
    assert batch["weights"].dtype == np.float32
    np.testing.assert_array_equal(batch["weights"], np.ones(4))
    for row, index in zip(batch["inputs"], batch["targets"], strict=True):
        tokens = source[index]["tokens"][:5]  # truncated to seq_len ...
        np.testing.assert_array_equal(row[: len(tokens)], tokens)
        assert not row[len(tokens) :].any()  # ... and padded with 0


def test_resume_equals_uninterrupted_run_across_epochs():
    source = _source(10)  # 4 rows per batch: batches 2 and 4 span an epoch boundary
    full = _train(source, 9)
    for start_step in (1, 2, 5):
        resumed = _take(
            pipeline.train_batches(source, batch_size=4, seq_len=5, seed=0, start_step=start_step),
            9 - start_step,
        )
        _assert_batches_equal(resumed, full[start_step:])


def test_each_epoch_is_a_new_permutation():
    source = _source(12)
    targets = np.concatenate([b["targets"] for b in _train(source, 12)])  # 4 epochs
    epochs = targets.reshape(4, 12)
    for epoch in epochs:
        assert sorted(epoch) == list(range(12))
    assert len({tuple(epoch) for epoch in epochs}) == 4


def test_seed_changes_the_order_and_threads_do_not():
    source = _source(32)
    reference = _train(source, 6, num_threads=0)
    _assert_batches_equal(_train(source, 6, num_threads=3), reference)
    other = np.concatenate([b["targets"] for b in _train(source, 6, seed=1)])
    assert not np.array_equal(other, np.concatenate([b["targets"] for b in reference]))


@pytest.mark.parametrize("process_count", [2, 4])
def test_process_slices_concatenate_to_the_global_train_batch(process_count):
    source = _source(11)
    global_batches = _train(source, 5, batch_size=8, start_step=2)
    per_process = [
        _train(
            source,
            5,
            batch_size=8,
            start_step=2,
            process_index=index,
            process_count=process_count,
        )
        for index in range(process_count)
    ]
    for step, expected in enumerate(global_batches):
        for name in expected:
            parts = [batches[step][name] for batches in per_process]
            assert parts[0].shape[0] == 8 // process_count
            np.testing.assert_array_equal(np.concatenate(parts), expected[name])


def test_eval_pads_last_batch_with_zero_weights():
    source = _source(10)
    batches = list(pipeline.eval_batches(source, batch_size=4, seq_len=6))
    assert len(batches) == pipeline.num_eval_batches(10, 4) == 3
    assert all(batch["inputs"].shape == (4, 6) for batch in batches)
    np.testing.assert_array_equal(batches[-1]["weights"], [1, 1, 0, 0])
    np.testing.assert_array_equal(batches[-1]["inputs"][2:], 0)
    np.testing.assert_array_equal(batches[-1]["targets"][2:], 0)
    weights = np.concatenate([batch["weights"] for batch in batches])
    targets = np.concatenate([batch["targets"] for batch in batches])
    assert weights.sum() == 10
    np.testing.assert_array_equal(targets[weights > 0], np.arange(10))  # in order, each once


@pytest.mark.parametrize("process_count", [2, 4])
def test_process_slices_concatenate_to_the_global_eval_batch(process_count):
    source = _source(13)
    global_batches = list(pipeline.eval_batches(source, batch_size=8, seq_len=4))
    per_process = [
        list(
            pipeline.eval_batches(
                source,
                batch_size=8,
                seq_len=4,
                process_index=index,
                process_count=process_count,
            )
        )
        for index in range(process_count)
    ]
    assert all(len(batches) == len(global_batches) == 2 for batches in per_process)
    for step, expected in enumerate(global_batches):
        for name in expected:
            parts = [batches[step][name] for batches in per_process]
            np.testing.assert_array_equal(np.concatenate(parts), expected[name])


def test_eval_max_batches_and_empty_source():
    source = _source(10)
    assert len(list(pipeline.eval_batches(source, batch_size=4, seq_len=6, max_batches=2))) == 2
    assert list(pipeline.eval_batches([], batch_size=4, seq_len=6)) == []


def test_num_eval_batches():
    assert pipeline.num_eval_batches(2000, 32) == 63
    assert pipeline.num_eval_batches(64, 32) == 2
    assert pipeline.num_eval_batches(0, 32) == 0


def test_batch_size_must_divide_across_processes():
    with pytest.raises(errors.ConfigError, match="process_count=3"):
        pipeline.train_batches(_source(4), batch_size=4, seq_len=5, seed=0, process_count=3)
    with pytest.raises(errors.ConfigError):
        pipeline.eval_batches(_source(4), batch_size=4, seq_len=5, process_count=3)


def _pair_source(num_examples):
    """Document pairs (LRA Retrieval): 'tokens2' is the label + 1 repeated, long enough to cut."""
    return [
        {
            "tokens": np.full(3, 7, np.uint16),
            "tokens2": np.full(9, index + 1, np.uint16),
            "label": index,
        }
        for index in range(num_examples)
    ]


def test_second_documents_become_inputs2_truncated_and_padded():
    (batch,) = _train(_pair_source(4), 1, seq_len=5)
    assert set(batch) == {"inputs", "inputs2", "targets", "weights"}
    for row, label in zip(batch["inputs2"], batch["targets"], strict=True):
        np.testing.assert_array_equal(row, np.full(5, label + 1))  # 9 tokens cut to 5
    np.testing.assert_array_equal(batch["inputs"][:, 3:], 0)  # 3 tokens padded to 5
    (*_, last) = pipeline.eval_batches(_pair_source(5), batch_size=4, seq_len=5)
    np.testing.assert_array_equal(last["weights"], [1, 0, 0, 0])
    np.testing.assert_array_equal(last["inputs2"][1:], 0)  # padding rows have both documents


@pytest.mark.parametrize("make", [_source, _pair_source])
def test_template_batch_has_the_shapes_and_dtypes_of_real_batches(make):
    source = make(6)
    template = pipeline.template_batch(source, batch_size=2, seq_len=5)
    (real,) = _train(source, 1, batch_size=2, seq_len=5)
    assert template.keys() == real.keys()
    for name in real:
        assert template[name].shape == real[name].shape
        assert template[name].dtype == real[name].dtype


def _shift_tokens(row, rng):
    """A stand-in augmentation: adds a random offset to the tokens."""
    return {**row, "inputs": row["inputs"] + rng.integers(0, 1000)}


def test_train_transform_draws_per_position_and_resumes_exactly():
    source = _source(8)
    plain = _train(source, 6)
    augmented = _train(source, 6, transform=_shift_tokens)
    offsets = [a["inputs"] - p["inputs"] for a, p in zip(augmented, plain, strict=True)]
    # The same examples in the same order, each row shifted by its own draw.
    for a, p in zip(augmented, plain, strict=True):
        np.testing.assert_array_equal(a["targets"], p["targets"])
    per_row = np.concatenate([o[:, 0] for o in offsets])
    assert len(set(per_row.tolist())) > len(per_row) // 2

    # Epoch 2 shows the same examples with new draws (batches 2, 3 hold epoch 1 of 8 examples).
    def draws(batches, batch_offsets):
        return {
            int(target): int(offset)
            for batch, offset in zip(batches, batch_offsets, strict=True)
            for target, offset in zip(batch["targets"], offset[:, 0], strict=True)
        }

    first, second = draws(augmented[:2], offsets[:2]), draws(augmented[2:4], offsets[2:4])
    assert first.keys() == second.keys() and first != second
    # Resume at step 3 draws exactly what the uninterrupted run drew.
    _assert_batches_equal(_train(source, 3, transform=_shift_tokens, start_step=3), augmented[3:])
