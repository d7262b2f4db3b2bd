"""Looks at a Pathfinder config: a sample grid, the label balance, and a connectivity check.

    python scripts/pathfinder_samples.py --config=32_hard_tiny [--data_dir=DIR]
        [--out=/tmp/pathfinder_samples.png] [--check=200] [--num_workers=N]

1. Builds the config if it is not prepared (generated configs only; `*_official` ones need
   `python scripts/prepare_data.py pathfinder --config=... --manual_dir=...` first), then saves
   the first 16 training images in a 4x4 grid with their labels.
2. Prints the label balance of every split.
3. Draws `--check` fresh images at the config's resolution and difficulty, as datasets get
   them, and checks each with `pathfinder.markers_connected` (a flood fill over the snakes'
   stroke pixels from the first dot): the dots must be joined exactly when the label is 1.
   Prints one summary line with the redraws per image; `targets_chained` counts the images
   that only the generator's final check (`verify=True`) kept from being ambiguous.
"""

import argparse
import collections
import pathlib
import sys
import time

# Run as a file from a checkout: make the repository importable without installing it.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxattn.data import pathfinder, pathfinder_builder  # noqa: E402


def save_grid(source, resolution: int, out: pathlib.Path, rows: int = 4, cols: int = 4) -> None:
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows))
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(source):
            continue
        record = source[index]
        ax.imshow(
            np.asarray(record["tokens"]).reshape(resolution, resolution),
            cmap="gray",
            vmin=0,
            vmax=255,
            interpolation="nearest",
        )
        ax.set_title(f"#{index} label {int(record['label'])}", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def check_connectivity(p: pathfinder.Params, count: int, seed: int) -> tuple[int, dict, float]:
    """(images whose strokes agree with their label, redraw counts by reason, seconds)."""
    rng = np.random.default_rng(seed)
    stats: dict[str, int] = {}
    agree = 0
    start = time.monotonic()
    for _ in range(count):
        example, geometry = pathfinder.draw_example(rng, p, stats=stats)
        agree += pathfinder.markers_connected(geometry) == bool(example.label)
    return agree, stats, time.monotonic() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="32_hard_tiny", help="pathfinder builder config")
    parser.add_argument("--data_dir", default=None, help="tfds data dir (default: tfds's)")
    parser.add_argument("--manual_dir", default=None, help="LRA's PNGs (*_official configs)")
    parser.add_argument("--out", default="/tmp/pathfinder_samples.png", help="sample grid PNG")
    parser.add_argument("--check", type=int, default=200, help="images for the connectivity check")
    parser.add_argument("--seed", type=int, default=12345, help="seed of the checked images")
    parser.add_argument("--num_workers", type=int, default=None, help="generator processes")
    args = parser.parse_args(argv)

    configs = {config.name: config for config in pathfinder_builder.Pathfinder.BUILDER_CONFIGS}
    if args.config not in configs:
        parser.error(f"unknown --config={args.config}; available: {sorted(configs)}")
    builder = pathfinder_builder.Pathfinder(
        config=args.config,
        data_dir=args.data_dir,
        num_workers=args.num_workers,
        manual_dir=args.manual_dir,
    )
    if not builder.is_prepared():
        builder.download_and_prepare()
    config = builder.builder_config

    out = pathlib.Path(args.out)
    save_grid(builder.as_data_source("train"), config.resolution, out)
    print(f"sample grid: {out}")

    for split in pathfinder_builder.SPLITS:
        source = builder.as_data_source(split)
        labels = collections.Counter(int(source[i]["label"]) for i in range(len(source)))
        share = labels[1] / max(len(source), 1)
        print(f"{split}: {len(source)} images, label 1: {labels[1]} ({100 * share:.1f}%)")

    if args.check > 0:
        agree, stats, seconds = check_connectivity(config.params, args.check, args.seed)
        restarts = ", ".join(f"{k} {v / args.check:.3g}" for k, v in sorted(stats.items()))
        print(
            f"connectivity ({config.resolution}px {config.difficulty}): {agree}/{args.check} "
            "fresh images have their dots joined by strokes iff label 1; "
            f"redraws per image: {restarts or 'none'}; {args.check / seconds:.1f} images/s"
        )
        if agree != args.check:
            sys.exit(1)


if __name__ == "__main__":
    main()
