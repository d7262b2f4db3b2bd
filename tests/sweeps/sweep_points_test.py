"""Sweep building (axes), point names, and override formatting checked by the trainer's parser."""

from __future__ import annotations

import os

import pytest

from jaxattn import sweeps
from jaxattn.sweeps import axes, command, points

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE = "configs/lra_nystrom.py:smoke"


# ----------------------------------------------------------------------------- axes
def test_product_zip_chain_compose():
    seeds = axes.axis("train.seed", [0, 1])
    lr_warmup = axes.zipped(
        axes.axis("optim.learning_rate", [1e-4, 5e-4]), axes.axis("optim.warmup_steps", [10, 2])
    )
    sweep = axes.product(seeds, lr_warmup)
    assert sweep == [
        {"train.seed": 0, "optim.learning_rate": 1e-4, "optim.warmup_steps": 10},
        {"train.seed": 0, "optim.learning_rate": 5e-4, "optim.warmup_steps": 2},
        {"train.seed": 1, "optim.learning_rate": 1e-4, "optim.warmup_steps": 10},
        {"train.seed": 1, "optim.learning_rate": 5e-4, "optim.warmup_steps": 2},
    ]
    assert axes.chain(seeds, axes.axis("model.pooling", ["cls"])) == [
        {"train.seed": 0},
        {"train.seed": 1},
        {"model.pooling": "cls"},
    ]


def test_axes_errors():
    with pytest.raises(sweeps.SweepError, match="differ in length"):
        axes.zipped(axes.axis("a.b", [1, 2]), axes.axis("a.c", [1]))
    with pytest.raises(sweeps.SweepError, match="set by two"):
        axes.product(axes.axis("a.b", [1]), axes.axis("a.b", [2]))
    with pytest.raises(sweeps.SweepError, match="no values"):
        axes.axis("a.b", [])
    with pytest.raises(sweeps.SweepError, match="dotted config path"):
        axes.axis("a..b", [1])


def test_parse_axis_reads_literals_like_ml_collections():
    assert axes.parse_axis("train.seed=0,1,2") == axes.axis("train.seed", [0, 1, 2])
    assert axes.parse_axis("config.optim.learning_rate=1e-4,5e-4") == axes.axis(
        "optim.learning_rate", [1e-4, 5e-4]
    )
    assert axes.parse_axis("a.b=softmax,None,true") == axes.axis("a.b", ["softmax", None, True])
    assert axes.from_flags(["a.x=1,2", "a.y=3"]) == [{"a.x": 1, "a.y": 3}, {"a.x": 2, "a.y": 3}]
    with pytest.raises(sweeps.SweepError, match="path=v1"):
        axes.parse_axis("train.seed")


# ----------------------------------------------------------------------------- names
def test_names_are_readable_and_stable():
    sweep = axes.product(
        axes.axis("train.seed", [1]), axes.axis("optim.learning_rate", [5e-4, 1e-5, 0.1 + 0.2])
    )
    names = [p.name for p in points.make_points(sweep)]
    assert names == [
        "seed=1,learning_rate=0.0005",
        "seed=1,learning_rate=1e-05",
        "seed=1,learning_rate=0.30000000000000004",  # 'g' would merge it with 0.3
    ]
    assert names == [p.name for p in points.make_points(sweep)]


def test_labels_are_shortest_unique_suffixes():
    assert points.labels(["a.x.lr", "b.y.lr", "train.seed", "model.attention.kind"]) == {
        "a.x.lr": "x.lr",
        "b.y.lr": "y.lr",
        "train.seed": "seed",
        "model.attention.kind": "kind",
    }


def test_names_are_safe_unique_and_bounded():
    pts = points.make_points(
        [
            {"data.data_dir": "/tmp/a b"},
            {"data.data_dir": "/tmp/a_b"},  # sanitizes to the same text: both get a hash
            {"model.name": ".hidden"},
            {"model.name": "x" * 300},
            {},
        ]
    )
    names = [p.name for p in pts]
    assert len(set(names)) == len(names)
    assert names[0].startswith("data_dir=_tmp_a_b-") and names[1].startswith("data_dir=_tmp_a_b-")
    assert names[2] == "name=.hidden"  # a dot inside a name is harmless
    assert len(names[3]) == points.MAX_NAME_CHARS
    assert names[4] == "base"
    for name in names:
        assert "/" not in name and not name.startswith(".")


def test_duplicate_or_malformed_points_fail():
    with pytest.raises(sweeps.SweepError, match="are the same"):
        points.make_points([{"a.b": 1, "a.c": 2}, {"a.c": 2, "a.b": 1}])
    with pytest.raises(sweeps.SweepError, match="list of dicts"):
        points.make_points({"a.b": 1})
    with pytest.raises(sweeps.SweepError, match="no points"):
        points.make_points([])


# ----------------------------------------------------------------------------- formatting
@pytest.mark.parametrize(
    "value, field_type, text",
    [
        ("softmax", str, "softmax"),
        ("a b,c", str, "a b,c"),
        ("cls", object, "'cls'"),  # untyped fields read literals: quote strings
        (True, bool, "true"),
        (False, object, "false"),
        (5e-4, float, "0.0005"),
        (1e-05, float, "1e-05"),
        (3, int, "3"),
        (None, object, "None"),
        ([1, 2], object, "[1, 2]"),
    ],
)
def test_format_value(value, field_type, text):
    assert command.format_value(value, field_type) == text


def test_check_formats_for_the_field_types(monkeypatch):
    monkeypatch.chdir(ROOT)
    sweep = axes.product(
        axes.axis("train.seed", [1]),
        axes.axis("optim.learning_rate", [5e-4]),
        axes.axis("model.attention.kind", ["softmax"]),
        axes.axis("data.allow_build", [False]),
        axes.axis("optim.grad_clip_norm", [1]),  # an int for an Optional[float] field
    )
    pts = points.make_points(sweep)
    shared_args, args = command.check(SMOKE, {"data.data_dir": "/tmp/tfds dir"}, pts)
    assert shared_args == ["--config.data.data_dir=/tmp/tfds dir"]
    assert args[pts[0].name] == [
        "--config.train.seed=1",
        "--config.optim.learning_rate=0.0005",
        "--config.model.attention.kind=softmax",
        "--config.data.allow_build=false",
        "--config.optim.grad_clip_norm=1",
    ]
    config, _ = command.parse(SMOKE, shared_args + args[pts[0].name])
    assert config.optim.grad_clip_norm == 1.0 and config.data.allow_build is False
    argv = command.trainer_argv(SMOKE, "/r/seed=1", shared_args)
    assert argv[1:5] == ["-m", "experiments.train", f"--config={SMOKE}", "--workdir=/r/seed=1"]


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"train.sed": 1}, "seed"),  # a typo: the locked config refuses it
        ({"train.max_eval_batches": None}, "cannot be set to None"),  # int parser
        ({"data.data_dir": None}, "reaches the trainer as 'None'"),  # str field: the text 'None'
        ({"train.num_train_steps": 1.5}, "num_train_steps"),
        ({"data.data_dir": "/x"}, "set both"),  # also a shared override below
    ],
)
def test_check_refuses_what_the_trainer_would_not_get(monkeypatch, overrides, match):
    monkeypatch.chdir(ROOT)
    shared = {"data.data_dir": "/y"} if match == "set both" else {}
    with pytest.raises(sweeps.SweepError, match=match):
        command.check(SMOKE, shared, points.make_points([overrides]))


def test_config_get_sweep_is_the_reproduction_seeds(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert command.sweep_of("configs/lra_nystrom.py") == [
        {"train.seed": 0},
        {"train.seed": 1},
        {"train.seed": 2},
    ]
    assert command.sweep_of("configs/lra_softmax.py:smoke") is None
    with pytest.raises(sweeps.SweepError, match="not found"):
        command.sweep_of("configs/nope.py")
