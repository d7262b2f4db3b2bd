"""FNet Fourier token mixing (Lee-Thorp et al. 2021, arXiv:2105.03824) on Long Range Arena.

  python -m experiments.train --config=configs/lra_fnet.py --workdir=runs/lra_fnet
  python -m experiments.train --config=configs/lra_fnet.py:smoke --workdir=/tmp/smoke

FNet replaces the attention sublayer by the real part of a 2-D DFT; it has no way to ignore
padding, so this config opts in with allow_padding_mixing=True: padded positions are mixed into
the real ones, as in FNet's own LRA runs (jaxattn/attention/fnet.py). Published ListOps test
accuracy: 35.33% (FNet paper, as tabulated in LRA.md §4.3); majority class ~17%.
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("fnet", arg, allow_padding_mixing=True)
