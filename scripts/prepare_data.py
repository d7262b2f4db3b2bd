"""Generates a dataset into the tfds data dir, so training can start without building it.

    python scripts/prepare_data.py listops --config=lra [--data_dir=DIR] [--num_workers=N]

Prints progress to stderr, then the directory and the split sizes. A dataset already prepared
there is left as it is. `data_dir` defaults to $TFDS_DATA_DIR or ~/tensorflow_datasets; pass the
same directory to training as `--config.data.data_dir=DIR`.
"""

import argparse
import pathlib
import sys
import time

# Run as a file from a checkout: make the repository importable without installing it.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from jaxattn.data import listops_builder  # noqa: E402

BUILDERS = {"listops": listops_builder.ListOps}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=sorted(BUILDERS))
    parser.add_argument("--config", default=None, help="builder config, e.g. lra | small | tiny")
    parser.add_argument("--data_dir", default=None, help="tfds data dir (default: tfds's)")
    parser.add_argument(
        "--num_workers", type=int, default=None, help="generator processes (default: all CPUs)"
    )
    args = parser.parse_args(argv)

    builder_cls = BUILDERS[args.dataset]
    configs = [config.name for config in builder_cls.BUILDER_CONFIGS]
    if args.config is not None and args.config not in configs:
        parser.error(f"unknown --config={args.config} for {args.dataset}; available: {configs}")
    builder = builder_cls(config=args.config, data_dir=args.data_dir, num_workers=args.num_workers)
    if builder.is_prepared():
        print(f"{args.dataset}/{builder.builder_config.name} already prepared", file=sys.stderr)
    else:
        start = time.monotonic()
        builder.download_and_prepare()
        print(f"built in {time.monotonic() - start:.0f}s", file=sys.stderr)
    sizes = ", ".join(f"{name}={split.num_examples}" for name, split in builder.info.splits.items())
    print(f"{args.dataset}/{builder.builder_config.name}: {builder.data_dir} ({sizes})")


if __name__ == "__main__":
    main()
