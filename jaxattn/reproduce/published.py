"""Published LRA accuracies (%) and which published row each of our attention kinds compares to.

Sources (transcribed in the shared reference LRA.md §4):
- LRA_TABLE1: Tay et al., "Long Range Arena", ICLR 2021 (arXiv:2011.04006), Table 1 (= the LRA
  README leaderboard of 8 Nov 2020). JAX/Flax, the official per-task configs (`setup=lra`).
- NYS_TABLE3: Xiong et al., "Nyströmformer", AAAI 2021 (arXiv:2102.03902), Table 3: the authors'
  PyTorch re-implementation, one 2-layer/64-d model for every kind (`setup=nystromformer`). The
  paper has no Path-X column.
- S4_STYLE: the S4-paper-style table (LRA.md §4.3, as re-tabulated in the RWKV paper App. J.2,
  citing Gu et al. 2022); used for FNet only (Lee-Thorp et al. 2021, arXiv:2105.03824), which has
  no row in the other two.

Path-X is FAIL in every source (no model learned it: at best 50%, chance), never a number.
Averages are recomputed from the five non-Path-X numbers (LRA.md pitfall 17): the LRA paper
prints Sinkhorn's as 51.29 (README) / 51.39 (paper), its five numbers average 51.48.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import statistics
from collections.abc import Mapping
from typing import Any

TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
AVERAGE_TASKS = TASKS[:5]  # the LRA convention: Path-X is not averaged (LRA.md pitfall 17)
FAIL = "FAIL"


@dataclasses.dataclass(frozen=True)
class Source:
    name: str  # short key
    label: str  # what the table prints
    short: str  # the table's "compared to" column
    citation: str
    rows: Mapping[str, tuple[float, float, float, float, float]]  # row -> the 5 AVERAGE_TASKS
    row_labels: Mapping[str, str]  # row -> the paper's own row name
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)  # model -> row


LRA_TABLE1 = Source(
    name="lra_table1",
    label="LRA Table 1",
    short="LRA T1",
    citation="Tay et al. 2021, Long Range Arena (arXiv:2011.04006), Table 1",
    rows={
        "transformer": (36.37, 64.27, 57.46, 42.44, 71.40),
        "local": (15.82, 52.98, 53.39, 41.46, 66.63),
        "sparse_transformer": (17.07, 63.58, 59.59, 44.24, 71.71),
        "longformer": (35.63, 62.85, 56.89, 42.22, 69.71),
        "linformer": (35.70, 53.94, 52.27, 38.56, 76.34),
        "reformer": (37.27, 56.10, 53.40, 38.07, 68.50),
        "sinkhorn": (33.67, 61.20, 53.83, 41.23, 67.45),
        "synthesizer": (36.99, 61.68, 54.67, 41.61, 69.45),
        "bigbird": (36.05, 64.02, 59.29, 40.83, 74.87),
        "linear_transformer": (16.13, 65.90, 53.09, 42.34, 75.30),
        "performer": (18.01, 65.40, 53.82, 42.77, 77.05),
    },
    row_labels={
        "transformer": "Transformer",
        "local": "Local Attention",
        "sparse_transformer": "Sparse Trans.",
        "longformer": "Longformer",
        "linformer": "Linformer",
        "reformer": "Reformer",
        "sinkhorn": "Sinkhorn Trans.",
        "synthesizer": "Synthesizer",
        "bigbird": "BigBird",
        "linear_transformer": "Linear Trans.",
        "performer": "Performer",
    },
)
NYS_TABLE3 = Source(
    name="nys_table3",
    label="Nyströmformer Table 3",
    short="Nys. T3",
    citation="Xiong et al. 2021, Nyströmformer (arXiv:2102.03902), Table 3",
    rows={
        "standard": (37.10, 65.02, 79.35, 38.20, 74.16),
        "reformer": (19.05, 64.88, 78.64, 43.29, 69.36),
        "linformer": (37.25, 55.91, 79.37, 37.84, 67.60),
        "performer": (18.80, 63.81, 78.62, 37.07, 69.87),
        "nystromformer": (37.15, 65.52, 79.56, 41.58, 70.94),
    },
    row_labels={
        "standard": "Standard (softmax)",
        "reformer": "Reformer (2 hashes)",
        "linformer": "Linformer (k = 256)",
        "performer": "Performer (256 features)",
        "nystromformer": "Nyströmformer",
    },
    aliases={"transformer": "standard"},
)
S4_STYLE = Source(
    name="s4_style",
    label="FNet (S4-style table)",
    short="S4-style",
    citation="Lee-Thorp et al. 2021, FNet (arXiv:2105.03824), as tabulated in the S4-style "
    "table (LRA.md §4.3; RWKV App. J.2 citing Gu et al. 2022)",
    rows={"fnet": (35.33, 65.11, 59.61, 38.67, 77.80)},
    row_labels={"fnet": "FNet"},
)
SOURCES = {s.name: s for s in (LRA_TABLE1, NYS_TABLE3, S4_STYLE)}

# Which sources a setup compares to, in order: the first that has the kind's model wins.
# `nystromformer`: its own Table 3 where the model has a row there, else LRA Table 1.
SETUP_SOURCES = {
    "nystromformer": (NYS_TABLE3, LRA_TABLE1, S4_STYLE),
    "lra": (LRA_TABLE1, S4_STYLE),
}

# Our kind -> the published model it reproduces (None: no published LRA row). Kinds missing here
# fall back to the `lra_model=` their configs/lra_<kind>.py names (model_of).
KIND_MODELS: dict[str, str | None] = {
    "softmax": "transformer",
    "softmax_xla": "transformer",
    "softmax_chunked": "transformer",
    "exact": "transformer",
    "nystrom": "nystromformer",
    "performer": "performer",
    "linformer": "linformer",
    "reformer": "reformer",
    "sinkhorn": "sinkhorn",
    "synthesizer": "synthesizer",
    "local": "local",
    "linear": "linear_transformer",
    "block_sparse": "bigbird",  # its default layout; longformer / fixed through BLOCK_SPARSE_LAYOUTS
    "fnet": "fnet",
    "routing": None,  # Routing Transformer: in neither LRA table
    "xca": None,  # XCiT's cross-covariance attention: in neither LRA table
    "axial": None,  # a grid kind: the LRA models offer no token grid
    # Zoo II (issue 22): in neither LRA table. MRA, YOSO, Combiner and PoNet report LRA in their
    # own papers; those rows are not transcribed here yet, so the grid shows ours alone.
    **dict.fromkeys(
        (
            "focused_linear",
            "lln",
            "trainable_kernel",
            "relit",
            "agent",
            "topk",
            "multiscale_window",
            "mra",
            "combiner",
            "ssa",
            "normalized",
            "neural_attention",
            "dma",
            "coca",
            "yoso",
            "aft",
            "transformer_vq",
            "fnet_ar",
            "lightconv",
            "dynconv",
            "sgu",
            "ponet",
            "gaam",
            "padre",
        )
    ),
}
# block_sparse's layout (configs/lra_block_sparse.py docstring) -> the LRA Table 1 model.
BLOCK_SPARSE_LAYOUT_PATH = "model.attention.block_sparse.layout"
BLOCK_SPARSE_LAYOUTS = {
    "bigbird": "bigbird",
    "longformer": "longformer",
    "fixed": "sparse_transformer",
}


@dataclasses.dataclass(frozen=True)
class Published:
    """One kind's published row for a setup (source None: there is none)."""

    model: str | None
    source: Source | None = None
    row: str | None = None

    def value(self, task: str) -> float | str | None:
        """The published accuracy (%) of `task`, FAIL for Path-X, None without a row."""
        if self.source is None:
            return None
        if task == "pathx":
            return FAIL
        return self.source.rows[self.row][AVERAGE_TASKS.index(task)]

    def average(self) -> float | None:
        """The 5-task mean recomputed from the per-task numbers (pitfall 17)."""
        if self.source is None:
            return None
        return round(statistics.fmean(self.source.rows[self.row]), 2)

    def describe(self) -> str:
        """'Nys. T3: Standard (softmax)', or why there is no published row."""
        if self.source is None:
            return "none" if self.model is None else f"none ({self.model}: no row)"
        return f"{self.source.short}: {self.source.row_labels[self.row]}"

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "source": self.source.name if self.source else None,
            "citation": self.source.citation if self.source else None,
            "row": self.source.row_labels[self.row] if self.source else None,
            "values": {t: self.value(t) for t in TASKS} if self.source else None,
            "average": self.average(),
        }


def config_lra_model(config_path: str) -> str | None:
    """The `lra_model="..."` keyword a configs/lra_<kind>.py passes, read without importing it."""
    try:
        with open(config_path) as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError):
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.keyword)
            and node.arg == "lra_model"
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    return None


def model_of(
    kind: str, overrides: Mapping[str, Any] | None = None, config_path: str | None = None
) -> str | None:
    """The published model `kind` reproduces under the shared `overrides` (None: none).

    Kinds that KIND_MODELS does not know (registered later) use their config's `lra_model=`.
    """
    overrides = overrides or {}
    if kind == "block_sparse" and BLOCK_SPARSE_LAYOUT_PATH in overrides:
        return BLOCK_SPARSE_LAYOUTS.get(overrides[BLOCK_SPARSE_LAYOUT_PATH])
    if kind in KIND_MODELS:
        return KIND_MODELS[kind]
    if config_path is not None and os.path.exists(config_path):
        return config_lra_model(config_path)
    return None


def lookup(model: str | None, setup: str) -> Published:
    """The first source of `setup` (SETUP_SOURCES) with a row for `model`."""
    if model is None:
        return Published(None)
    for source in SETUP_SOURCES[setup]:
        row = source.aliases.get(model, model)
        if row in source.rows:
            return Published(model, source, row)
    return Published(model)
