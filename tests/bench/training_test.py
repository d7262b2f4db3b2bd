"""The training-throughput benchmark: the trainer command, the throughput summary, the CLI."""

import json

import pytest

from jaxattn import cpu_runtime
from jaxattn.bench import training


def _args(*extra):
    return training._parse(["--window=2", "--windows=2", *extra])


def test_command_sets_windows_and_a_single_final_evaluation():
    cmd = training.command("configs/lra_nystrom.py", _args("--config-arg=smoke"), "/tmp/w")
    assert cmd[1:4] == ["-m", "experiments.train", "--config=configs/lra_nystrom.py:smoke"]
    assert "--config.train.num_train_steps=6" in cmd  # 2 x (2 + 1)
    assert "--config.train.log_every_steps=2" in cmd
    assert "--config.train.eval_every_steps=6" in cmd
    assert "--config.train.max_eval_batches=1" in cmd


def test_command_gives_full_configs_a_valid_schedule():
    # The full configs warm up for 1000 steps; the benchmark's short run must still be valid.
    from configs import lra_nystrom
    from jaxattn.train import optim

    cmd = training.command("configs/lra_nystrom.py", _args(), "/tmp/w")
    config = lra_nystrom.get_config()
    for flag in cmd:
        if flag.startswith("--config.optim.") or flag.startswith("--config.train.num_train"):
            path, value = flag[len("--config.") :].split("=")
            section, name = path.split(".")
            config[section][name] = int(value)
    schedule = optim.make_schedule(config.optim, config.train.num_train_steps)
    assert float(schedule(0)) > 0


def test_summary_drops_the_compile_window_and_derives_tokens(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {"data": {"batch_size": 4, "max_length": 100}, "model": {"attention": {"kind": "x"}}}
        )
    )
    rows = [
        {"step": 2, "split": "train", "steps_per_s": 0.1},  # compilation
        {"step": 4, "split": "train", "steps_per_s": 2.0},
        {"step": 6, "split": "validation", "accuracy": 0.5},
        {"step": 6, "split": "train", "steps_per_s": 4.0},
        {"step": 8, "split": "train", "steps_per_s": 3.0},
    ]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "results.json").write_text(json.dumps({"num_parameters": 7}))
    s = training.summarize(str(tmp_path), window=2)
    assert s["steps_per_s"] == 3.0  # median of 2, 4, 3
    assert s["tokens_per_s"] == 3.0 * 4 * 100
    assert s["first_window_s"] == pytest.approx(20.0)
    assert s["kind"] == "x" and s["num_parameters"] == 7


@pytest.mark.slow  # trains several configs through the CLI
def test_cli_measures_smoke_configs_and_records_a_failing_one(tmp_path):
    out = tmp_path / "out"
    rc = training.main(
        [
            "--configs=configs/lra_softmax.py,configs/lra_linear.py",
            "--config-arg=smoke",
            "--window=1",
            "--windows=2",
            f"--out={out}",
        ]
    )
    doc = json.loads((out / "results.json").read_text())
    softmax, linear = doc["results"]
    assert rc == 0, doc
    assert softmax["status"] == linear["status"] == "ok"
    assert softmax["speed_vs_softmax"] == 1.0
    assert linear["kind"] == "linear" and linear["steps_per_s"] > 0
    assert linear["tokens_per_s"] == pytest.approx(linear["steps_per_s"] * 8 * 128)
    assert linear["peak_rss_bytes"] > 2**20
    md = (out / "results.md").read_text()
    assert "| configs/lra_linear.py | glibc_hugetlb | 1 | linear |" in md or (
        "| configs/lra_linear.py | glibc | 1 | linear |" in md
    )
    assert linear["runtime"]["runtime"] == cpu_runtime.choose({})  # what `auto` picks here
    assert not [p for p in out.iterdir() if p.name.startswith("workdirs_")]  # scratch removed

    # A typo in an override: the trainer refuses it; the result says so and the CLI fails.
    rc = training.main(
        [
            "--configs=configs/lra_softmax.py",
            "--config-arg=smoke",
            "--window=1",
            "--windows=1",
            "--override=train.no_such_key=1",
            f"--out={out}",
        ]
    )
    (bad,) = json.loads((out / "results.json").read_text())["results"]
    assert rc == 1 and bad["status"] == "error"
    assert "no_such_key" in bad["reason"]


def test_missing_config_file_is_one_clear_error():
    with pytest.raises(SystemExit, match="not found"):
        training._configs("configs/lra_nope.py")


@pytest.mark.slow  # trains several configs through the CLI
def test_runtimes_and_rounds_are_interleaved_and_recorded(tmp_path):
    out = tmp_path / "out"
    rc = training.main(
        [
            "--configs=configs/lra_softmax.py",
            "--config-arg=smoke",
            "--window=1",
            "--windows=1",
            "--runtimes=glibc,none",
            "--rounds=2",
            f"--out={out}",
        ]
    )
    doc = json.loads((out / "results.json").read_text())
    assert rc == 0, doc
    order = [(r["round"], r["runtime"]["runtime"]) for r in doc["results"]]
    assert order == [(1, "glibc"), (1, "none"), (2, "glibc"), (2, "none")]
    glibc, none = doc["results"][:2]
    assert "xla_cpu_use_xnnpack" in glibc["runtime"]["XLA_FLAGS"]
    assert "xla_cpu_use_xnnpack" not in (none["runtime"]["XLA_FLAGS"] or "")
    assert none["runtime"]["GLIBC_TUNABLES"] is None
    assert all(r["peak_rss_bytes"] > 2**20 for r in doc["results"])
    md = (out / "results.md").read_text()
    assert "## By CPU runtime" in md and "| configs/lra_softmax.py | none |" in md


def test_unknown_runtime_is_refused_before_anything_runs(capsys):
    with pytest.raises(SystemExit):
        training._parse(["--runtimes=glibc,tcmaloc"])
    assert "tcmaloc" in capsys.readouterr().err
