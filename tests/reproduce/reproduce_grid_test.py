"""The grid's rows (discovered from configs/ and the registry), cells on disk and cell plans."""

from __future__ import annotations

import os

import pytest

from jaxattn import attention, sweeps
from jaxattn.reproduce import grid
from jaxattn.sweeps import layout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(ROOT, "configs")


def test_rows_are_the_registered_kinds_with_their_configs():
    rows = grid.discover(CONFIGS)
    assert [r.kind for r in rows][: len(attention.REGISTRY)] == list(attention.REGISTRY)
    by_kind = {r.kind: r.config for r in rows}
    assert by_kind["softmax"] == "configs/lra_softmax.py"
    assert by_kind["block_sparse"] == "configs/lra_block_sparse.py"
    assert "base" not in by_kind  # lra_base.py is not a kind


def test_a_newly_registered_kind_appears_without_edits(monkeypatch, tmp_path):
    monkeypatch.setitem(attention.REGISTRY, "fake_kind", attention.REGISTRY["softmax"])
    rows = grid.discover(CONFIGS)
    assert grid.Row("fake_kind", None) in rows  # registered, no config file: "no config" row
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("lra_fake_kind.py", "lra_softmax.py", "lra_base.py", "lra_unregistered.py"):
        (configs / name).write_text("")
    rows = grid.discover(str(configs))
    assert grid.Row("fake_kind", "configs/lra_fake_kind.py") in rows
    assert grid.Row("softmax", "configs/lra_softmax.py") in rows
    assert grid.Row("nystrom", None) in rows
    assert {r.kind for r in rows} == set(attention.REGISTRY)  # neither base nor unregistered


def test_a_kind_the_lra_models_cannot_serve_is_marked_by_its_capabilities(monkeypatch, tmp_path):
    """A grid kind (AttentionSpec.grid) is a row without config, even with a config file, and
    its cells have no spec and read n/a in the table."""
    import dataclasses

    from jaxattn.reproduce import table

    grid_spec = dataclasses.replace(attention.REGISTRY["softmax"], grid=True)
    monkeypatch.setitem(attention.REGISTRY, "fake_grid_kind", grid_spec)
    (tmp_path / "lra_fake_grid_kind.py").write_text("")
    rows = grid.discover(str(tmp_path))
    row = next(r for r in rows if r.kind == "fake_grid_kind")
    assert row.config is None and "grid" in row.unservable
    (cell,) = grid.cells(str(tmp_path), [row], ["listops"], setup="lra", size="small")
    assert cell.spec is None and cell.unservable == row.unservable
    collected = table.collect_cell(cell, None, None)
    assert collected["status"] == table.NO_CONFIG and collected["unservable"] == row.unservable
    assert table._cell_text(collected, table._Notes()) == "n/a"


def test_exact_alias_config_is_a_row(tmp_path):
    (tmp_path / "lra_exact.py").write_text("")
    rows = grid.discover(str(tmp_path), {"softmax": None})
    assert [r.kind for r in rows] == ["softmax", "exact"]


def test_select_keeps_grid_order_and_rejects_unknown_kinds():
    rows = [grid.Row("a", None), grid.Row("b", None), grid.Row("c", None)]
    assert grid.select(rows, ["c", "a"]) == [rows[0], rows[2]]
    assert grid.select(rows, []) == rows
    with pytest.raises(sweeps.SweepError, match="unknown kind"):
        grid.select(rows, ["d"])


def test_cell_layout_and_specs(tmp_path):
    rows = [grid.Row("softmax", "configs/lra_softmax.py"), grid.Row("fake", None)]
    cells = grid.cells(str(tmp_path), rows, ["listops", "pathfinder"], setup="lra", size="small")
    assert [(c.task, c.kind) for c in cells] == [
        ("listops", "softmax"),
        ("listops", "fake"),
        ("pathfinder", "softmax"),
        ("pathfinder", "fake"),
    ]
    assert cells[2].dir == str(tmp_path / "lra-small" / "pathfinder" / "softmax")
    assert cells[2].spec == "configs/lra_softmax.py:task=pathfinder,setup=lra,size=small"
    assert cells[1].spec is None
    smoke = grid.cells(
        str(tmp_path), rows[:1], ["listops"], setup="lra", size="base", config_arg="smoke"
    )
    assert smoke[0].dir == str(tmp_path / "lra-base-smoke" / "listops" / "softmax")
    assert smoke[0].spec.endswith(":task=listops,setup=lra,size=base,smoke")


def _cell(tmp_path, kind="softmax", spec_arg="task=listops,size=small"):
    return grid.Cell(
        "listops",
        kind,
        f"configs/lra_{kind}.py",
        str(tmp_path / "cell"),
        f"configs/lra_{kind}.py:{spec_arg}",
    )


def test_plan_builds_checked_trainer_jobs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cell = _cell(tmp_path)
    plan = grid.plan(cell, [0, 2], ["--config.data.data_dir=/tmp/tfds"])
    assert plan.error is None
    assert [j.name for j in plan.jobs] == ["listops/softmax/seed=0", "listops/softmax/seed=2"]
    argv = plan.jobs[1].argv
    assert argv[1:4] == ("-m", "experiments.train", f"--config={cell.spec}")
    assert f"--workdir={tmp_path}/cell/seed=2" in argv
    assert "--config.data.data_dir=/tmp/tfds" in argv and "--config.train.seed=2" in argv
    assert plan.sweep["overrides"] == {"data.data_dir": "/tmp/tfds"}
    assert [p["name"] for p in plan.sweep["points"]] == ["seed=0", "seed=2"]
    assert not os.path.exists(cell.dir)  # planning writes nothing


def test_plan_keeps_recorded_seeds_and_runs_only_the_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cell = _cell(tmp_path)
    layout.claim(cell.dir, grid.plan(cell, [0, 1, 2], []).sweep)
    plan = grid.plan(cell, [0, 5], [])
    assert [p["name"] for p in plan.sweep["points"]] == ["seed=0", "seed=1", "seed=2", "seed=5"]
    assert [j.name for j in plan.jobs] == ["listops/softmax/seed=0", "listops/softmax/seed=5"]
    grid.check_claims([plan])  # extends the recorded sweep: accepted
    other = grid.plan(cell, [0], ["--config.data.data_dir=/elsewhere"])
    with pytest.raises(sweeps.SweepError, match="listops/softmax: .*different sweep"):
        grid.check_claims([other])


def test_a_bad_override_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(sweeps.SweepError, match="listops/softmax"):
        grid.plan(_cell(tmp_path), [0], ["--config.data.data_dirr=/tmp/x"])


def test_a_config_that_does_not_build_is_a_cell_error(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    broken = tmp_path / "lra_broken.py"
    broken.write_text("def get_config(arg=None):\n    raise ValueError('no such setting')\n")
    cell = grid.Cell("listops", "broken", str(broken), str(tmp_path / "c"), f"{broken}:smoke")
    plan = grid.plan(cell, [0], ["--config.data.data_dir=/tmp/x"])
    assert plan.jobs == [] and "no such setting" in plan.error
    assert grid.plan(grid.Cell("listops", "x", None, str(tmp_path), None), [0], []).jobs == []


def test_jobs_run_seed_major():
    def plan(kind, n):
        cell = grid.Cell("listops", kind, None, kind, None)
        jobs = [grid.launchers.Job(f"{kind}/{i}", (), "", "", "") for i in range(n)]
        return grid.CellPlan(cell, {}, jobs)

    names = [j.name for j in grid.interleave([plan("a", 2), plan("b", 3)])]
    assert names == ["a/0", "b/0", "a/1", "b/1", "b/2"]
