"""The device mesh and the logical-axis rules: the only place that knows about mesh axes.

Model code names axes logically (batch, length, embed, heads, kv, mlp, vocab); the rules in
`config.sharding.logical_axis_rules` map them to mesh axes. Today's default is data parallel:
the batch is split over every device on 'data' and parameters are replicated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxattn import errors


def make_mesh(axes: Sequence[tuple[str, int]], devices: Sequence[jax.Device] | None = None) -> Mesh:
    """[('data', -1), ...] -> Mesh over all devices; one size may be -1 ("the rest")."""
    devices = list(jax.devices() if devices is None else devices)
    names = [name for name, _ in axes]
    sizes = [int(size) for _, size in axes]
    if sizes.count(-1) > 1:
        raise errors.ConfigError(f"sharding.mesh {list(axes)}: at most one axis may be -1")
    known = int(np.prod([s for s in sizes if s != -1])) if sizes else 1
    if -1 in sizes:
        if len(devices) % known:
            raise errors.ConfigError(
                f"sharding.mesh {list(axes)} does not divide {len(devices)} devices"
            )
        sizes[sizes.index(-1)] = len(devices) // known
    if int(np.prod(sizes)) != len(devices):
        raise errors.ConfigError(
            f"sharding.mesh {list(axes)} needs {int(np.prod(sizes))} devices; there are {len(devices)}"
        )
    # The Mesh constructor gives Auto axes, so jit shardings propagate without explicit types.
    return Mesh(np.asarray(devices).reshape(sizes), tuple(names))


def logical_rules(rules: Sequence[Sequence[Any]]) -> tuple[tuple[str, Any], ...]:
    return tuple(
        (
            str(name),
            None if axis is None else (tuple(axis) if isinstance(axis, (list, tuple)) else axis),
        )
        for name, axis in rules
    )


def data_sharding(mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> NamedSharding:
    """Sharding of batch inputs: the leading (batch) axis on the mesh axes the 'batch' rule names."""
    return NamedSharding(mesh, nn.logical_to_mesh_axes(("batch",), rules))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def unbox(tree: Any) -> Any:
    """Strips logical-axis boxes (nn.Partitioned) from a pytree, leaving plain arrays / shapes."""
    return jax.tree.map(
        lambda x: x.unbox(apply_constraint=False) if isinstance(x, nn.meta.AxisMetadata) else x,
        tree,
        is_leaf=lambda x: isinstance(x, nn.meta.AxisMetadata),
    )


def state_shardings(abstract_boxed_state: Any, mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> Any:
    """Shardings for a state whose params carry logical-axis boxes (nn.with_logical_partitioning)."""
    specs = nn.get_partition_spec(abstract_boxed_state)
    return nn.logical_to_mesh_sharding(specs, mesh, rules)


def batch_divisor(mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> int:
    """How many ways the batch axis is split: global batch sizes must be a multiple of this."""
    spec = nn.logical_to_mesh_axes(("batch",), rules)[0]
    if spec is None:
        return 1
    names = spec if isinstance(spec, tuple) else (spec,)
    return int(np.prod([mesh.shape[n] for n in names]))
