"""Train and evaluate one config: the command every experiment runs.

  python -m experiments.train --config=configs/lra_nystrom.py --workdir=runs/lra_nystrom
  python -m experiments.train --config=configs/lra_nystrom.py:smoke --workdir=/tmp/smoke \
      --config.model.attention.kind=softmax

The config is locked: a misspelt `--config.x=...` fails. Rerunning with the same --workdir resumes
from its latest checkpoint. Errors caused by input (config, data, checkpoints, NaN loss) print
one line saying what to do and exit with status 2.
"""

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from jaxattn import cpu_runtime

_CONFIG = config_flags.DEFINE_config_file(
    "config",
    None,
    "Path to a configs/*.py file, e.g. configs/lra_nystrom.py:smoke",
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for checkpoints, metrics and results.json."
)
flags.mark_flags_as_required(["config", "workdir"])


class _ProjectLogFilter:
    def filter(self, record) -> bool:
        return (
            record.levelno >= logging.converter.STANDARD_WARNING
            or "jaxattn" in record.pathname
            or record.pathname == __file__
        )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from jaxattn import errors
    from jaxattn.train import trainer

    logging.set_verbosity(logging.INFO)
    # Keep jaxattn's progress lines readable: other libraries (orbax, grain) speak at WARNING+.
    logging.get_absl_handler().addFilter(_ProjectLogFilter())
    logging.info(cpu_runtime.log_line(os.environ))
    try:
        results = trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except errors.JaxattnError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    metric = results["best_metric"]
    print(
        f"test {metric} {results['test'][metric]:.4f} ({results['checkpoint']} checkpoint, step "
        f"{results['checkpoint_step']}); results in {os.path.join(_WORKDIR.value, 'results.json')}"
    )


if __name__ == "__main__":
    # Before jax is imported (configs import it while flags are parsed).
    cpu_runtime.reexec_with_defaults()
    app.run(main)
