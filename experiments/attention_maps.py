"""Attention maps of a trained ViT: per-head maps of the CLS query and attention rollout, as PNGs.

  python -m experiments.attention_maps --workdir=runs/vit_softmax --split=test --n=4 [--out=DIR]
  python -m experiments.attention_maps --workdir=W --query_patch=24   # a patch's query, not CLS

Reads the run's config.json and best-validation parameters (`jaxattn/train/restore.py`), runs `n`
images of `split` through the model and writes, per image, `DIR/image<i>_layer<l>.png` (one
panel per head: the query's weights over the patch grid) and `DIR/image<i>_rollout.png` (the
input and the rollout over the grid). DIR defaults to `<workdir>/attention_maps`.

How the weights are obtained, for any kind: the pure attention functions return outputs, not
weights. MultiHeadAttention sows what it calls its kind with (query and key after the relative
scheme, bias, the kind's tensors and rng) into the 'attention_probe' collection when asked. For a
kind whose output is a token mixing linear in the value, out[t] = Σ_s P[t, s] v[s], calling it
again with one-hot values (v[s] = e_s, in chunks of H columns) returns P itself. That covers
exact kinds (softmax, local, block_sparse) and approximations (nystrom, linformer, performer,
linear, ...): for those the map is the kind's own implicit weights, for random ones (performer,
reformer) those of the very draw the layer used (the sown rng). Kinds that are not such a token
map cannot be drawn this way and get one line saying why (NOT_TOKEN_MAPS, and every 'mixer'
family kind such as fnet, which forms no query/key).

Rollout (Abnar & Zuidema 2020, https://arxiv.org/abs/2005.00928): per layer, average the heads,
add the identity (the residual) and renormalise rows; multiply the layers' matrices from the
first to the last; read the chosen query's row over the grid tokens.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

from absl import app, flags, logging

from jaxattn import cpu_runtime

# Kinds that are not a token mixing linear in the value, with the reason (one line each).
NOT_TOKEN_MAPS = {
    "xca": "cross-covariance attention mixes channels (an H x H map per head), not tokens",
}

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained ViT's workdir (experiments.train).")
_SPLIT = flags.DEFINE_string("split", "test", "Which split's images.")
_N = flags.DEFINE_integer("n", 4, "How many images (the split's first n).")
_OUT = flags.DEFINE_string("out", None, "Output directory (default: <workdir>/attention_maps).")
_QUERY_PATCH = flags.DEFINE_integer(
    "query_patch", None, "Map this grid patch's query (raster index) instead of the CLS token's."
)
_CHECKPOINT = flags.DEFINE_enum(
    "checkpoint", "best", ["best", "latest"], "best-validation params or the latest state."
)


def cannot_map(bound: Any) -> str | None:
    """Why this bound kind's weights cannot be drawn as a token map, or None if they can."""
    if bound.spec.family != "attention":
        return f"attention kind '{bound.kind}' is a token mixer ({bound.spec.family}): no query/key weights"
    return NOT_TOKEN_MAPS.get(bound.kind)


def weights_from_outputs(bound: Any, call: dict[str, Any]):
    """The kind's weights P [B, N, T, S] from its sown call: the outputs for one-hot values.

    `call` holds 'query' [B, T, N, H], 'key' [B, S, K, H], 'bias' and the kind's tensors. Values
    are one-hot rows of the identity, H columns at a time; `scale` is passed explicitly as the
    layer's 1/sqrt(H).
    """
    import jax.numpy as jnp

    call = dict(call)
    query, key, bias = call.pop("query"), call.pop("key"), call.pop("bias")
    B, S, K, H = key.shape
    eye = jnp.eye(S, math.ceil(S / H) * H, dtype=jnp.float32)  # [S, S padded to H columns]
    columns = []
    for c in range(0, eye.shape[1], H):
        value = jnp.broadcast_to(eye[None, :, None, c : c + H], (B, S, K, H)).astype(query.dtype)
        out = bound(query, key, value, bias=bias, scale=1.0 / math.sqrt(H), **call)
        if bound.spec.state is not None:
            out = out[0]  # (out, new_state)
        columns.append(out)  # [B, T, N, H]: P[b, n, t, c + j]
    probs = jnp.concatenate(columns, axis=-1)[..., :S]  # [B, T, N, S]
    return jnp.transpose(probs, (0, 2, 1, 3)).astype(jnp.float32)  # [B, N, T, S]


def rollout(layer_weights: list[Any]):
    """Attention rollout: [B, N, T, T] per layer -> [B, T, T], rows summing to 1."""
    import jax.numpy as jnp

    result = None
    for probs in layer_weights:
        a = probs.mean(axis=1)  # [B, T, T]
        a = a + jnp.eye(a.shape[-1], dtype=a.dtype)
        a = a / a.sum(axis=-1, keepdims=True)
        result = a if result is None else jnp.einsum("BTS,BSU->BTU", a, result)
    return result


def probe_weights(model: Any, variables: Any, images: Any) -> list[Any]:
    """One [B, N, T, T] weight array per encoder layer, for these images."""
    import jax

    from jaxattn.layers import attention as attention_layers
    from jaxattn.train import trainer

    _, probes = model.apply(
        variables,
        images,
        deterministic=True,
        rngs={"attention": jax.random.PRNGKey(trainer.EVAL_ATTENTION_SEED)},
        mutable=[attention_layers.PROBE_COLLECTION],
    )
    encoder = probes[attention_layers.PROBE_COLLECTION]["encoder"]
    layers = sorted(encoder, key=lambda name: int(name.rsplit("_", 1)[1]))
    return [
        weights_from_outputs(model.attention, encoder[name]["attention"]["call"][0])
        for name in layers
    ]


def save_maps(
    out_dir: str,
    images: Any,
    layer_weights: list[Any],
    *,
    grid: tuple[int, int],
    num_prefix: int,
    query: int,
) -> list[str]:
    """Writes the per-layer head panels and the rollout PNGs; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows, cols = grid
    os.makedirs(out_dir, exist_ok=True)
    rolled = np.asarray(rollout(layer_weights))  # [B, T, T]
    paths = []
    for b in range(images.shape[0]):
        image = np.asarray(images[b])
        shown = image[..., 0] if image.shape[-1] == 1 else image
        for layer, probs in enumerate(layer_weights):
            heads = np.asarray(probs[b, :, query, num_prefix:]).reshape(-1, rows, cols)
            fig, axes = plt.subplots(1, len(heads) + 1, figsize=(2 * (len(heads) + 1), 2.2))
            axes[0].imshow(shown, cmap="gray")
            axes[0].set_title("input")
            for h, ax in enumerate(axes[1:]):
                ax.imshow(heads[h], cmap="viridis")
                ax.set_title(f"head {h}")
            for ax in axes:
                ax.axis("off")
            fig.suptitle(f"layer {layer}")
            paths.append(os.path.join(out_dir, f"image{b}_layer{layer}.png"))
            fig.savefig(paths[-1], dpi=80, bbox_inches="tight")
            plt.close(fig)
        fig, axes = plt.subplots(1, 2, figsize=(4.4, 2.2))
        axes[0].imshow(shown, cmap="gray")
        axes[0].set_title("input")
        axes[1].imshow(rolled[b, query, num_prefix:].reshape(rows, cols), cmap="viridis")
        axes[1].set_title("rollout")
        for ax in axes:
            ax.axis("off")
        paths.append(os.path.join(out_dir, f"image{b}_rollout.png"))
        fig.savefig(paths[-1], dpi=80, bbox_inches="tight")
        plt.close(fig)
    return paths


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import numpy as np

    from jaxattn import data, errors, models, tasks
    from jaxattn.train import restore

    logging.set_verbosity(logging.WARNING)  # orbax reports every restore at INFO
    try:
        config, model, variables = restore.load(_WORKDIR.value, checkpoint_kind=_CHECKPOINT.value)
        if not isinstance(model, models.MODELS["vision_transformer"]):
            raise errors.ConfigError(f"{_WORKDIR.value} is not a vision_transformer run")
        reason = cannot_map(model.attention)
        if reason is not None:
            print(f"no attention maps: {reason}", file=sys.stderr)
            sys.exit(1)
        _, open_split = data.get_dataset({**config.data.to_dict(), "allow_build": False})
        source = open_split(_SPLIT.value)
        task = tasks.get_task(config.task.name)
        rows = [task.make_row(source[i]) for i in range(min(_N.value, len(source)))]
        images = np.stack([row["inputs"] for row in rows])
        num_prefix = model.num_prefix_tokens
        if _QUERY_PATCH.value is None:
            if model.pooling != "cls":
                raise errors.ConfigError("this ViT has no CLS token: pass --query_patch=<index>")
            query = 0
        else:
            query = num_prefix + _QUERY_PATCH.value
        layer_weights = probe_weights(model, variables, images)
        out_dir = _OUT.value or os.path.join(_WORKDIR.value, "attention_maps")
        paths = save_maps(
            out_dir, images, layer_weights, grid=model.grid, num_prefix=num_prefix, query=query
        )
    except errors.JaxattnError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"{len(paths)} PNGs in {out_dir} (kind '{model.attention.kind}')")


if __name__ == "__main__":
    flags.mark_flags_as_required(["workdir"])
    cpu_runtime.reexec_with_defaults()
    app.run(main)
