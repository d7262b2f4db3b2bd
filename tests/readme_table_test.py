"""README.md's capability tables are the ones the registry generates (scripts/capability_table.py)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

from jaxattn.attention import REGISTRY, core

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_script():
    spec = importlib.util.spec_from_file_location(
        "capability_table", ROOT / "scripts" / "capability_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


table = load_script()


def test_readme_section_is_the_generated_one():
    current = table.current_section((ROOT / "README.md").read_text())
    assert current == table.render(), (
        "README.md's capability table is out of date with the registry: "
        "run `python scripts/capability_table.py --write`"
    )


def test_every_registered_kind_has_a_row():
    rendered = table.render()
    for kind in REGISTRY:
        assert f"| `{kind}` |" in rendered, kind


def test_any_kind_renders_and_scheme_compatibility_follows_capabilities():
    def fn(query, key, value):
        return query

    registry = {
        "dense": core.AttentionSpec(fn, causal=True, bias=True, dropout=True, complexity="O(T·S)"),
        "linear": core.AttentionSpec(
            fn, decoder=core.Decoder(init=fn, step=fn), complexity="O(T | S)"
        ),
        "mixer": core.AttentionSpec(fn, family="mixer"),  # no complexity declared
    }
    rendered = table.render(registry)
    lines = rendered.splitlines()
    assert "| `dense` | attention | yes | yes | no | yes | no | no | yes | O(T·S) |" in lines
    assert "| `linear` | attention | no | yes | no | no | no | yes | no | O(T \\| S) |" in lines
    assert "| `mixer` | mixer | no | yes | no | no | no | no | no | ? |" in lines
    assert "| `learned` | `positional` | absolute | all kinds |" in lines
    assert "| `rope` | `relative` | rotary | all kinds except `mixer` |" in lines
    assert "| `alibi` | `relative` | bias | `dense` |" in lines


def test_write_replaces_only_the_marked_section():
    text = f"# title\n\nintro\n{table.START}\nold table\n{table.END}\n\nafter\n"
    updated = table.replace_section(text, "new table\n")
    assert updated == f"# title\n\nintro\n{table.START}\nnew table\n{table.END}\n\nafter\n"
    assert table.current_section(updated) == "new table\n"
    with pytest.raises(SystemExit, match="markers"):
        table.replace_section("no markers here", "x")
