"""Pathfinder generator, tfds builder (generated and LRA's PNGs) and `jaxattn.data.get_dataset`."""

import importlib.util
import pathlib

import ml_collections
import numpy as np
import pytest
from PIL import Image

from jaxattn import data, errors
from jaxattn.data import pathfinder, pathfinder_builder, pathfinder_draw

P32 = pathfinder.params(32)


def _flat(splits):
    return [(e.image.tobytes(), e.label) for examples in splits.values() for e in examples]


def _generate(sizes, *, seed=5, num_workers=1, examples_per_chunk=6):
    return pathfinder.generate(
        P32,
        sizes,
        seed=seed,
        examples_per_chunk=examples_per_chunk,
        num_workers=num_workers,
        log_every_s=None,
    )


@pytest.fixture(scope="module")
def drawn():
    """60 images at 32 px with their geometry, as datasets get them, and the redraw counts."""
    rng = np.random.default_rng(7)
    stats = {}
    return [pathfinder.draw_example(rng, P32, stats=stats) for _ in range(60)], stats


# --- parameters and generator ----------------------------------------------------------------


def test_parameters_follow_lra_table():
    assert P32 == pathfinder.Params(
        image_size=32,
        padding=1,
        paddle_margins=(1,),
        paddle_length=2,
        paddle_thickness=0.5,
        marker_radius=1.5,
        seed_distance=7,
        contour_length=14,
        continuity=1.0,
        distractor_length=4,
        num_distractor_snakes=5,  # 20 // 4
        snake_contrasts=(2.0,),
        paddle_contrasts=(0.75,),
    )
    path_x = pathfinder.params(128)
    assert (path_x.paddle_margins, path_x.paddle_thickness, path_x.seed_distance) == (
        (2, 3),
        1.5,
        20,
    )
    assert path_x.num_distractor_snakes == 35 // 4
    easy = pathfinder.params(256, "easy")
    assert (easy.padding, easy.contour_length, easy.distractor_length) == (22, 6, 2)
    assert easy.num_distractor_snakes == 15
    assert pathfinder.params(64, "intermediate").contour_length == 9
    with pytest.raises(ValueError):
        pathfinder.params(48)
    with pytest.raises(ValueError):
        pathfinder.params(32, "medium")


def test_same_seed_same_bytes_for_any_worker_count():
    sizes = {"train": 24, "validation": 8}
    once = _flat(_generate(sizes))
    assert once == _flat(_generate(sizes))
    assert once == _flat(_generate(sizes, num_workers=2))
    assert once != _flat(_generate(sizes, seed=6))


def test_a_smaller_split_is_a_prefix_and_splits_differ():
    small, large = _generate({"train": 9}), _generate({"train": 20, "validation": 9})
    assert _flat(small) == _flat({"train": large["train"][:9]})
    assert _flat(small) != _flat({"validation": large["validation"]})


def test_images_shapes_and_intensities(drawn):
    pairs, _ = drawn
    for example, geometry in pairs:
        assert example.image.dtype == np.uint8 and example.image.shape == (32, 32)
        assert example.image.min() == 0 and example.image.max() == 255
        assert example.label in (0, 1)
        assert geometry.inks.dtype == np.uint8
        assert 2 <= len(geometry.inks) <= 2 + P32.num_distractor_snakes
        # Everything drawn shows in the image.
        assert (example.image[geometry.inks.max(axis=0) >= 64] > 0).all()


def test_two_marker_dots_of_the_right_size(drawn):
    for example, geometry in drawn[0]:
        blobs = geometry.marker_layer >= 128
        for cy, cx in geometry.markers:
            near = pathfinder_draw.disc(32, (cy, cx), P32.marker_radius + 1)
            # One disc of ~pi r^2 = 7 pixels per marker, bright in the image.
            assert 5 <= np.count_nonzero(blobs & near) <= 12
            assert example.image[int(round(cy)), int(round(cx))] >= 200
        assert np.count_nonzero(blobs) == np.count_nonzero(
            blobs & np.logical_or(*(pathfinder_draw.disc(32, c, 3.0) for c in geometry.markers))
        )
        assert np.linalg.norm(geometry.markers[0] - geometry.markers[1]) >= 2 * (
            P32.marker_radius + pathfinder.CLEARANCE
        )


def test_snake_lengths_are_plausible(drawn):
    for _, geometry in drawn[0]:
        strokes = (geometry.inks >= 32).sum(axis=(1, 2))
        # 14 paddles of ~2 px (~4 px of stroke each) per target; 4 per distractor.
        assert 35 <= strokes[0] <= 80 and 35 <= strokes[1] <= 80
        assert all(8 <= n <= 25 for n in strokes[2:])


def test_markers_connected_exactly_when_label_is_one(drawn):
    pairs, stats = drawn
    labels = [example.label for example, _ in pairs]
    assert 0 < sum(labels) < len(labels)
    for example, geometry in pairs:
        assert pathfinder.markers_connected(geometry) == bool(example.label)
        origin, terminal = geometry.tips[0, 0], geometry.tips[1 if example.label == 0 else 0, 1]
        np.testing.assert_allclose(geometry.markers, np.stack([origin, terminal]) - 0.25)
    # The construction rules, not the final redraw, keep labels unambiguous.
    assert stats.get("targets_chained", 0) <= 2


def test_connectivity_check_sees_a_bridge(drawn):
    example, geometry = next((e, g) for e, g in drawn[0] if e.label == 0)
    (y0, x0), (y1, x1) = np.round(geometry.markers).astype(int)
    bridge = np.zeros((1, 32, 32), np.uint8)
    for t in np.linspace(0, 1, 64):
        bridge[0, round(y0 + t * (y1 - y0)), round(x0 + t * (x1 - x0))] = 255
    bridged = geometry._replace(inks=np.concatenate([geometry.inks, bridge]))
    assert not pathfinder.markers_connected(geometry)
    assert pathfinder.markers_connected(bridged)


# --- tfds builder and get_dataset ------------------------------------------------------------


def _data_config(data_dir, *, builder_config="32_hard_tiny", allow_build=False, **extra):
    config = ml_collections.ConfigDict()
    config.name = "pathfinder"
    config.builder_config = builder_config
    config.data_dir = str(data_dir)
    config.allow_build = allow_build
    for key, value in extra.items():
        setattr(config, key, value)
    return config


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    data.get_dataset(_data_config(data_dir, allow_build=True))
    return data_dir


def test_builder_round_trip(tiny_dir):
    info, get_source = data.get_dataset(_data_config(tiny_dir))
    assert info == data.DatasetInfo(
        vocab_size=256, num_classes=2, splits={"train": 256, "validation": 64, "test": 64}
    )
    tiny = pathfinder_builder.Pathfinder(config="32_hard_tiny").builder_config
    expected = list(pathfinder.iter_split(P32, "validation", 64, seed=tiny.seed, log_every_s=None))
    source = get_source("validation")
    for index, example in enumerate(expected):
        record = source[index]
        assert record["tokens"].dtype == np.uint8 and record["tokens"].shape == (1024,)
        np.testing.assert_array_equal(record["tokens"], example.image.reshape(-1))
        assert record["label"] == example.label
    labels = [int(get_source(s)[i]["label"]) for s in info.splits for i in range(info.splits[s])]
    assert 0.4 < np.mean(labels) < 0.6  # 384 Bernoulli(0.5) draws


def test_pixel_padding_quirk_off_shifts_tokens(tiny_dir):
    info, get_source = data.get_dataset(_data_config(tiny_dir, pixel_padding_quirk=False))
    assert info.vocab_size == 257
    _, faithful = data.get_dataset(_data_config(tiny_dir))
    shifted, raw = get_source("test")[3]["tokens"], faithful("test")[3]["tokens"]
    np.testing.assert_array_equal(shifted, raw.astype(np.int64) + 1)  # 0 is left to padding
    assert raw.min() == 0 and shifted.min() == 1


def test_prepare_data_script_finds_the_prepared_dataset(tiny_dir, capsys):
    path = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "prepare_data.py"
    spec = importlib.util.spec_from_file_location("prepare_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["pathfinder", "--config=32_hard_tiny", f"--data_dir={tiny_dir}"])
    out = capsys.readouterr()
    assert "already prepared" in out.err
    assert "train=256, validation=64, test=64" in out.out


def test_unknown_builder_config(tmp_path):
    with pytest.raises(errors.ConfigError, match="available: 32_easy, 32_intermediate") as raised:
        data.get_dataset(_data_config(tmp_path, builder_config="32_hardest"))
    assert "32_hard_tiny" in str(raised.value) and "128_hard_official" in str(raised.value)


def test_missing_dataset_names_the_command(tmp_path):
    with pytest.raises(errors.DataNotFoundError) as raised:
        data.get_dataset(_data_config(tmp_path))
    message = str(raised.value)
    assert "\n" not in message
    assert "pathfinder/32_hard_tiny" in message and str(tmp_path) in message
    assert "--config.data.allow_build=True" in message
    assert "scripts/prepare_data.py pathfinder --config=32_hard_tiny" in message


def test_missing_manual_dir_names_it(tmp_path):
    with pytest.raises(errors.DataNotFoundError) as raised:
        data.get_dataset(
            _data_config(tmp_path, builder_config="32_hard_official", allow_build=True)
        )
    message = str(raised.value)
    assert "\n" not in message
    assert str(tmp_path / "downloads" / "manual") in message
    assert "lra_release/lra_release/pathfinder32" in message


# --- LRA's PNGs from the manual dir ----------------------------------------------------------


def _fake_release(manual_dir: pathlib.Path, *, num_batches=2, per_batch=10):
    """A tiny `lra_release` tree; returns {pixel bytes: label} of its non-empty images."""
    root = manual_dir / "lra_release" / "lra_release" / "pathfinder32" / "curv_contour_length_14"
    (root / "metadata").mkdir(parents=True)
    rng = np.random.default_rng(0)
    expected = {}
    for batch in (2, 10)[:num_batches]:  # '10' sorts before '2' as text
        (root / "imgs" / str(batch)).mkdir(parents=True)
        lines = []
        for i in range(per_batch):
            name, label = f"sample_{i}.png", int(rng.integers(2))
            path = root / "imgs" / str(batch) / name
            if batch == 2 and i == 3:
                path.write_bytes(b"")  # the empty file of pitfall 5
            else:
                pixels = rng.integers(0, 256, (32, 32), dtype=np.uint8)
                if batch == 2 and i == 4:
                    pixels[:] = 0  # an all-black image
                else:
                    expected[pixels.tobytes()] = label
                Image.fromarray(pixels).save(path)
            lines.append(f"imgs/{batch} {name} {i} {label} 1.0 14 4 2 0.5 1 1")
        (root / "metadata" / f"{batch}.npy").write_text("\n".join(lines) + "\n")
    return root, expected


def test_official_pngs_round_trip(tmp_path):
    manual_dir = tmp_path / "manual"
    root, expected = _fake_release(manual_dir)
    config = _data_config(
        tmp_path / "tfds",
        builder_config="32_hard_official",
        allow_build=True,
        manual_dir=str(manual_dir),
    )
    info, get_source = data.get_dataset(config)
    # 20 listed, the empty file dropped before splitting (19: 15/1/3), the black one after.
    assert sum(info.splits.values()) == 18 and info.splits["train"] >= 14
    seen = {}
    for split, size in info.splits.items():
        for index in range(size):
            record = get_source(split)[index]
            seen[record["tokens"].tobytes()] = int(record["label"])
    assert seen == expected


def test_official_index_is_sorted_and_split_is_seeded(tmp_path):
    root, _ = _fake_release(tmp_path)
    entries = pathfinder_builder.read_official_index(root)
    assert [path.parent.name for path, _ in entries] == ["2"] * 9 + ["10"] * 10  # numeric order
    assert all(path.stat().st_size > 0 for path, _ in entries)
    first = pathfinder_builder.split_official(entries, seed=42)
    assert {k: len(v) for k, v in first.items()} == {"train": 15, "validation": 1, "test": 3}
    assert first == pathfinder_builder.split_official(entries, seed=42)
    assert first != pathfinder_builder.split_official(entries, seed=43)


def test_official_dir_prefers_the_nested_copy(tmp_path):
    for prefix in ("lra_release/lra_release", "lra_release"):
        (tmp_path / prefix / "pathfinder128" / "curv_contour_length_14" / "metadata").mkdir(
            parents=True
        )
    found = pathfinder_builder.find_official_dir(tmp_path, 128, "hard")
    assert found == tmp_path / "lra_release/lra_release/pathfinder128/curv_contour_length_14"
    assert pathfinder_builder.find_official_dir(tmp_path, 64, "hard") is None


# --- other sizes -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("resolution", [64, 128, 256])
def test_other_resolutions_are_unambiguous(resolution):
    p = pathfinder.params(resolution)
    rng = np.random.default_rng(resolution)
    for _ in range(4):
        example, geometry = pathfinder.draw_example(rng, p)
        assert example.image.shape == (resolution, resolution)
        assert example.image.max() == 255
        assert pathfinder.markers_connected(geometry) == bool(example.label)
