"""Tiny stand-ins for the LRA files users download or place by hand (IMDB, CIFAR-10, AAN), in
their real layouts, so tests can build and train the text, image and retrieval tasks offline.
The contents are random; only the formats are real."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

from jaxattn.data import aan, cifar


def _tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def _text(rng: np.random.Generator, low: int = 40, high: int = 300) -> bytes:
    return bytes(rng.integers(32, 127, rng.integers(low, high)).astype(np.uint8))


def write_imdb(manual_dir: Path, per_class: int = 8, seed: int = 0) -> Path:
    """aclImdb_v1.tar.gz with `per_class` reviews per split and label."""
    rng = np.random.default_rng(seed)
    members = {
        f"aclImdb/{split}/{label}/{i}_{7 if label == 'pos' else 2}.txt": _text(rng)
        for split in ("train", "test")
        for label in ("pos", "neg")
        for i in range(per_class)
    }
    return _tar_gz(manual_dir / "aclImdb_v1.tar.gz", members)


def write_cifar10(manual_dir: Path, per_batch: int = 4, seed: int = 0) -> Path:
    """cifar-10-binary.tar.gz with `per_batch` records in each of the six batch files."""
    rng = np.random.default_rng(seed)

    def batch() -> bytes:
        labels = rng.integers(0, 10, (per_batch, 1), dtype=np.uint8)
        pixels = rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8)
        return np.concatenate([labels, pixels], axis=1).tobytes()

    names = [*cifar.TRAIN_FILES, cifar.TEST_FILE]
    return _tar_gz(
        manual_dir / "cifar-10-binary.tar.gz",
        {f"cifar-10-batches-bin/{name}": batch() for name in names},
    )


def write_aan(manual_dir: Path, pairs: int = 12, seed: int = 0) -> Path:
    """The three new_aan_pairs TSVs with `pairs` rows each."""
    rng = np.random.default_rng(seed)
    manual_dir.mkdir(parents=True, exist_ok=True)
    for name in aan.SPLIT_FILES.values():
        rows = [
            b"\t".join([b"%d.0" % (i % 2), b"A%d" % i, b"B%d" % i, _text(rng), _text(rng)])
            for i in range(pairs)
        ]
        (manual_dir / name).write_bytes(b"\n".join(rows) + b"\n")
    return manual_dir


WRITERS = {"imdb": write_imdb, "cifar10": write_cifar10, "aan": write_aan}
