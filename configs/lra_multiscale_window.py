"""Multi-scale window attention (Guo et al. 2019, arXiv:1907.06226) on Long Range Arena.

  python -m experiments.train --config=configs/lra_multiscale_window.py --workdir=runs/lra_msw
  python -m experiments.train --config=configs/lra_multiscale_window.py:smoke --workdir=/tmp/smoke

Each head attends inside its own sliding window (one-sided widths cycled over the heads). The
paper evaluates text classification only (no LRA); its heads use ω = 3, 5, 7, ... and the whole
sentence. Our choice for LRA's long inputs: widths (1, 8, 64, 4096), i.e. ω = 3, 17, 129 and a
global head (4096 >= every LRA length but Path-X), so each layer keeps one softmax head and
three local scales; with the Nyströmformer setup's 2 heads this is (1, 8). Published LRA results:
none. The LRA per-model sizes (`setup=lra`) are the Transformer's.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("multiscale_window", arg, window_sizes=(1, 8, 64, 4096))
