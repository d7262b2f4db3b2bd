"""The table from fabricated cells: mean ± std, averages, missing / error cells, files."""

from __future__ import annotations

import importlib.util
import json

import pytest

from jaxattn.reproduce import grid, published, table
from tests.reproduce import fake_cells

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None  # requirements-bench.txt
TASKS = list(published.TASKS)
ROWS = [
    grid.Row("softmax", "configs/lra_softmax.py"),
    grid.Row("performer", "configs/lra_performer.py"),
    grid.Row("routing", "configs/lra_routing.py"),
    grid.Row("fake_kind", None),
]


def _grid(tmp_path, size="base", tasks=TASKS, config_arg=""):
    cells = grid.cells(
        str(tmp_path), ROWS, tasks, setup="nystromformer", size=size, config_arg=config_arg
    )
    return cells, {(c.task, c.kind): c for c in cells}


def _collect(tmp_path, cells, size="base", tasks=TASKS, errors=None, config_arg=""):
    return table.collect(
        cells,
        ROWS,
        root=str(tmp_path),
        setup="nystromformer",
        size=size,
        tasks=tasks,
        seeds=[0, 1, 2],
        config_arg=config_arg,
        errors=errors,
    )


@pytest.fixture
def filled(tmp_path):
    """softmax: all six tasks done over 3 seeds; performer: 4 of the 5, one error, one partial;
    routing: interrupted ListOps only."""
    cells, at = _grid(tmp_path)
    for i, task in enumerate(TASKS):
        accs = {0: 0.30 + i / 10, 1: 0.32 + i / 10, 2: 0.34 + i / 10}
        fake_cells.write_cell(at[(task, "softmax")], accs)
    for task in ("listops", "text", "retrieval"):
        fake_cells.write_cell(at[(task, "performer")], {0: 0.5, 1: 0.6, 2: 0.7})
    fake_cells.write_cell(at[("image", "performer")], {0: fake_cells.ERROR})
    fake_cells.write_cell(
        at[("pathfinder", "performer")], {0: 0.6, 1: fake_cells.ERROR, 2: fake_cells.PENDING}
    )
    fake_cells.write_cell(at[("listops", "routing")], {0: fake_cells.INTERRUPTED})
    return tmp_path, cells, _collect(tmp_path, cells)


def _row(doc, kind):
    return next(r for r in doc["rows"] if r["kind"] == kind)


def test_mean_std_and_difference(filled):
    _, _, doc = filled
    cell = _row(doc, "softmax")["cells"]["listops"]
    assert cell["status"] == "done" and cell["seeds"] == [0, 1, 2] and cell["n"] == 3
    assert cell["mean"] == pytest.approx(32.0) and cell["std"] == pytest.approx(2.0)
    assert cell["accuracies"] == pytest.approx({"0": 30.0, "1": 32.0, "2": 34.0})
    assert cell["published"] == 37.10 and cell["diff"] == pytest.approx(32.0 - 37.10)
    pathx = _row(doc, "softmax")["cells"]["pathx"]
    assert pathx["published"] == "FAIL" and pathx["diff"] is None and pathx["n"] == 3
    assert doc["wall_time_s"] == pytest.approx(10.0 * (18 + 9 + 1))
    assert doc["num_runs_done"] == 18 + 9 + 1


def test_average_needs_all_five_non_pathx_cells(filled):
    _, _, doc = filled
    avg = _row(doc, "softmax")["average"]
    means = [32.0 + 10 * i for i in range(5)]  # Path-X (82.0) is not averaged
    assert avg["status"] == "complete" and avg["mean"] == pytest.approx(sum(means) / 5)
    assert avg["published"] == 58.77
    assert avg["diff"] == pytest.approx(sum(means) / 5 - 58.77)
    performer = _row(doc, "performer")["average"]
    assert performer == {
        "status": "incomplete",
        "count": 4,
        "mean": None,
        "published": 53.63,
        "diff": None,
    }


def test_missing_error_partial_and_no_config_cells(filled):
    _, _, doc = filled
    performer = _row(doc, "performer")["cells"]
    assert performer["image"]["status"] == "error" and performer["image"]["mean"] is None
    assert "boom in the trainer" in performer["image"]["errors"][0]["error"]
    partial = performer["pathfinder"]
    assert (partial["status"], partial["n"], partial["num_pending"]) == ("partial", 1, 1)
    assert partial["std"] is None
    assert performer["pathx"]["status"] == "not_run" and performer["pathx"]["mean"] is None
    routing = _row(doc, "routing")
    assert routing["cells"]["listops"]["status"] == "interrupted"
    assert routing["published"]["source"] is None
    assert {c["status"] for c in _row(doc, "fake_kind")["cells"].values()} == {"no_config"}

    md = table.markdown(doc)
    lines = {line.split(" | ")[0].strip("| "): line for line in md.splitlines() if "|" in line}
    assert "32.00 ± 2.00 (n=3) · 37.10 · -5.10" in lines["softmax"]
    assert "82.00 ± 2.00 (n=3) · FAIL |" in lines["softmax"]
    assert "| 52.00 · 58.77 · -6.77 |" in lines["softmax"]
    assert "error [" in lines["performer"] and "incomplete (4/5) · 53.63" in lines["performer"]
    assert "| — · FAIL |" in lines["performer"]  # Path-X not run: published still shown
    assert "60.00 (n=1) [" in lines["performer"]
    assert "— (interrupted) · —" in lines["routing"]
    assert lines["fake_kind"].count("no config") == 6
    assert "boom in the trainer" in md and "1 of 3 seed runs done" in md
    assert "Seeds per reported cell" in md
    assert "- Fewer than 3 seeds (a mean, not yet a reproduction): n=1: pathfinder/performer." in md
    assert "NOT comparable" not in md


def test_one_seed_grid_says_every_cell_once(tmp_path):
    """A grid run with one seed (size=small) names the seed count once, not ~80 cells."""
    cells, at = _grid(tmp_path, size="small", tasks=["listops", "pathfinder"])
    for key in [("listops", "softmax"), ("pathfinder", "softmax"), ("listops", "performer")]:
        fake_cells.write_cell(at[key], {0: 0.3})
    md = table.markdown(_collect(tmp_path, cells, size="small", tasks=["listops", "pathfinder"]))
    assert "- Seeds of every reported cell: 0." in md
    assert "(a mean, not yet a reproduction): n=1: every reported cell (3)." in md
    assert "listops/softmax" not in md


def test_never_a_number_without_a_run(tmp_path):
    cells, _ = _grid(tmp_path)
    doc = _collect(tmp_path, cells)
    for row in doc["rows"]:
        assert all(c["mean"] is None and c["diff"] is None for c in row["cells"].values())
        assert row["average"]["mean"] is None
    md = table.markdown(doc)
    assert "(n=" not in md and "Seeds of every" not in md
    assert "0 finished runs" in md


def test_config_errors_show_as_error_cells(tmp_path):
    cells, _ = _grid(tmp_path, tasks=["listops"])
    doc = _collect(
        tmp_path, cells, tasks=["listops"], errors={("listops", "routing"): "bad setting"}
    )
    assert _row(doc, "routing")["cells"]["listops"]["status"] == "error"
    assert "routing: bad setting" in table.markdown(doc)


def test_small_grid_says_not_comparable(tmp_path):
    cells, at = _grid(tmp_path, size="small", tasks=["listops", "pathfinder"])
    fake_cells.write_cell(at[("listops", "softmax")], {0: 0.2, 1: 0.3, 2: 0.4})
    doc = _collect(tmp_path, cells, size="small", tasks=["listops", "pathfinder"])
    assert not doc["grid"]["comparable"]
    md = table.markdown(doc)
    assert md.startswith("# LRA grid (setup=nystromformer, size=small): NOT comparable")
    assert "orientation only" in md
    assert "30.00 ± 10.00 (n=3) · 37.10 · -7.10" in md  # published shown for orientation
    assert "incomplete (1/5)" in md


def test_files_written(filled):
    tmp_path, _, doc = filled
    paths = table.write(doc)
    directory = tmp_path / "nystromformer-base"
    exts = ("md", "json", "png") if HAS_MATPLOTLIB else ("md", "json")
    assert paths == [str(directory / f"lra_table.{ext}") for ext in exts]
    assert json.loads((directory / "lra_table.json").read_text())["rows"][0]["kind"] == "softmax"
    assert (directory / "lra_table.md").read_text() == table.markdown(doc)
    if HAS_MATPLOTLIB:
        png = (directory / "lra_table.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
