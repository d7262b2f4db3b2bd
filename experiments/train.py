"""Train and evaluate one config: the command every experiment runs.

  python -m experiments.train --config=configs/lra_nystrom.py --workdir=runs/lra_nystrom
  python -m experiments.train --config=configs/lra_nystrom.py:smoke --workdir=/tmp/smoke \
      --config.model.attention.kind=softmax

The config is locked: a misspelt `--config.x=...` fails. Rerunning with the same --workdir resumes
from its latest checkpoint. Errors caused by input (config, data, checkpoints, NaN loss) print
one line saying what to do and exit with status 2.
"""

import glob
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags


def _cpu_runtime_defaults() -> None:
    """Faster XLA:CPU settings, measured on the project's 2-core machine (STACK.md §7).

    The Nyströmformer ListOps train step (batch 32, length 2000) took 2.2 s with the defaults,
    1.56 s with tcmalloc preloaded (XLA:CPU allocates fresh large buffers every call; glibc maps
    them fresh and page-faults) and 1.36 s with tcmalloc and `--xla_cpu_use_xnnpack=false`.
    tcmalloc is used when the Debian package libtcmalloc-minimal4 is installed: the process
    re-executes itself once with LD_PRELOAD set. Set JAXATTN_CPU_DEFAULTS=0 to keep the defaults.
    Both only matter on CPU; GPU/TPU runs ignore them.
    """
    env = os.environ
    if env.get("JAXATTN_CPU_DEFAULTS", "1") == "0":
        return
    if "xla_cpu_use_xnnpack" not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_use_xnnpack=false").strip()
    if "tcmalloc" in env.get("LD_PRELOAD", ""):
        return
    found = sorted(glob.glob("/usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4"))
    if found:
        env["LD_PRELOAD"] = " ".join(filter(None, [found[0], env.get("LD_PRELOAD", "")]))
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


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
        return record.levelno >= logging.converter.STANDARD_WARNING or "jaxattn" in record.pathname


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from jaxattn import errors
    from jaxattn.train import trainer

    logging.set_verbosity(logging.INFO)
    # Keep jaxattn's progress lines readable: other libraries (orbax, grain) speak at WARNING+.
    logging.get_absl_handler().addFilter(_ProjectLogFilter())
    logging.info(
        "LD_PRELOAD=%r XLA_FLAGS=%r", os.environ.get("LD_PRELOAD"), os.environ.get("XLA_FLAGS")
    )
    try:
        results = trainer.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except errors.JaxattnError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(
        f"test accuracy {results['test_accuracy']:.4f} ({results['checkpoint']} checkpoint, step "
        f"{results['checkpoint_step']}); results in {os.path.join(_WORKDIR.value, 'results.json')}"
    )


if __name__ == "__main__":
    _cpu_runtime_defaults()  # before jax is imported (configs import it while flags are parsed)
    app.run(main)
