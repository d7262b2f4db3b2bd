"""Forecast against truth for a few test windows of a trained forecasting run.

    python -m experiments.train --config=configs/ts_dlinear.py:dataset=etth1,horizon=96 \\
        --config.data.manual_dir=/path/to/ETT --workdir=runs/ts_dlinear_etth1_96
    python scripts/forecast_plot.py --workdir=runs/ts_dlinear_etth1_96 --n=4 --out=forecast.png

Restores the run's best-validation parameters (`jaxattn/train/restore.py`), predicts `--n` test
windows spread evenly over the test split, and draws one panel per window: the look-back and the
true next P steps of one channel (`--channel`, default the last: OT on ETT) and the forecast, on
the normalized scale the metrics use. Prints each window's MSE / MAE over all channels. Needs
matplotlib (requirements-bench.txt).
"""

import argparse
import pathlib
import sys

import numpy as np

# Run as a file from a checkout: make the repository importable without installing it.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from jaxattn import data, errors, tasks  # noqa: E402
from jaxattn.train import restore  # noqa: E402


def forecasts(workdir: str, n: int, checkpoint: str = "best") -> tuple[list[int], dict, dict]:
    """(test window indices, {'inputs' [n, L, C], 'targets' [n, P, C]}, predictions [n, P, C] and
    the config's channel names) of `n` windows spread over the test split."""
    config, model, variables = restore.load(workdir, checkpoint_kind=checkpoint)
    if config.task.name != "forecasting":
        raise errors.ConfigError(f"{workdir} is a '{config.task.name}' run, not forecasting")
    _, open_split = data.get_dataset({**config.data.to_dict(), "allow_build": False})
    source = open_split("test")
    indices = np.linspace(0, len(source) - 1, n).round().astype(int).tolist()
    task = tasks.get_task(config.task.name)
    rows = [task.make_row(source[i], config.data.max_length) for i in indices]
    batch = {k: np.stack([row[k] for row in rows]) for k in rows[0]}
    predictions, _ = model.apply(variables, **task.model_inputs(batch), deterministic=True)
    return indices, batch, {"predictions": np.asarray(predictions), "config": config}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a trained forecasting run")
    parser.add_argument("--n", type=int, default=4, help="test windows to draw")
    parser.add_argument("--channel", type=int, default=-1, help="channel index (default: last)")
    parser.add_argument("--checkpoint", choices=["best", "latest"], default="best")
    parser.add_argument("--out", default="forecast.png", help="PNG path")
    args = parser.parse_args(argv)
    try:
        indices, batch, out = forecasts(args.workdir, args.n, args.checkpoint)
    except errors.JaxattnError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    config, predictions = out["config"], out["predictions"]
    seq_len, horizon = batch["inputs"].shape[1], batch["targets"].shape[1]
    fig, axes = plt.subplots(len(indices), 1, figsize=(10, 2.4 * len(indices)), squeeze=False)
    for ax, i, x, y, p in zip(
        axes[:, 0], indices, batch["inputs"], batch["targets"], predictions, strict=True
    ):
        mse, mae = float(np.square(p - y).mean()), float(np.abs(p - y).mean())
        print(f"test window {i}: mse {mse:.4f} mae {mae:.4f}")
        past, future = np.arange(-seq_len, 0), np.arange(horizon)
        ax.plot(past, x[:, args.channel], color="0.5", lw=1, label="look-back")
        ax.plot(future, y[:, args.channel], color="k", lw=1, label="truth")
        ax.plot(future, p[:, args.channel], color="C3", lw=1.5, label="forecast")
        ax.axvline(0, color="0.8", lw=0.8)
        ax.set_title(f"test window {i}: all-channel mse {mse:.3f}, mae {mae:.3f}", fontsize=9)
        ax.set_ylabel("normalized")
    axes[0, 0].legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("step relative to the forecast start")
    name = f"{config.model.name} on {config.data.name}/{config.data.builder_config}"
    fig.suptitle(f"{name}: L={seq_len}, P={horizon}, channel {args.channel}", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
