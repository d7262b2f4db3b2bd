"""Pixel-intensity tokens and LRA's padding quirk, switched at read time by a source adaptor.

Image datasets (`cifar`, Pathfinder) store raw intensities 0..255 as uint8 'tokens'. LRA-code
builds its attention padding mask as `inputs > 0` for every task (Nys-code: `!= 0`), so every
pixel of intensity 0 is treated as padding: black pixels, most of a Pathfinder image, and after
grayscale truncation the darkest colours too (LRA.md pitfall 14). `data.pixel_padding_quirk`:

  True (default, faithful): tokens are the raw intensities 0..255, vocabulary 256, and the
      model's `tokens != 0` mask drops intensity-0 pixels, as in the published LRA numbers.
  False: tokens are intensity + 1 (1..256, uint16), vocabulary 257; id 0 is left to real padding,
      so no pixel is masked. Results are then not comparable with published LRA numbers.

The switch wraps the prepared source (`adapt`), so one prepared dataset serves both settings.

    source = pixels.adapt(builder.as_data_source('train'), padding_quirk=False)
    info = DatasetInfo(vocab_size=pixels.vocab_size(padding_quirk=False), ...)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from jaxattn.data import pipeline

NUM_INTENSITIES = 256


def vocab_size(padding_quirk: bool) -> int:
    """256 with LRA's quirk (id = intensity), 257 without (id = intensity + 1, 0 = padding)."""
    return NUM_INTENSITIES if padding_quirk else NUM_INTENSITIES + 1


class ShiftedTokens:
    """A source whose records have `offset` added to their token fields (as uint16).

    Random access like the source it wraps: `len(s)`, `s[i]`, and `s.__getitems__(indices)`.
    """

    def __init__(
        self, source: pipeline.Source, *, offset: int = 1, keys: Sequence[str] = ("tokens",)
    ):
        self.source = source
        self.offset = offset
        self.keys = tuple(keys)

    def __len__(self) -> int:
        return len(self.source)

    def _shift(self, record: Mapping[str, Any]) -> dict[str, Any]:
        record = dict(record)
        for key in self.keys:
            record[key] = np.asarray(record[key]).astype(np.uint16) + np.uint16(self.offset)
        return record

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._shift(self.source[index])

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        if hasattr(self.source, "__getitems__"):
            records = self.source.__getitems__(indices)
        else:
            records = [self.source[index] for index in indices]
        return [self._shift(record) for record in records]

    def __repr__(self) -> str:
        return f"ShiftedTokens({self.source!r}, offset={self.offset}, keys={self.keys})"


def adapt(source: pipeline.Source, *, padding_quirk: bool) -> pipeline.Source:
    """The source as the model should see it: unchanged with the quirk, intensity + 1 without."""
    return source if padding_quirk else ShiftedTokens(source, offset=1)
