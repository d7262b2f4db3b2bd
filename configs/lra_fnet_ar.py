"""FNetAR causal Fourier token mixing (Lou et al. 2021, arXiv:2107.10932) on Long Range Arena.

  python -m experiments.train --config=configs/lra_fnet_ar.py --workdir=runs/lra_fnet_ar
  python -m experiments.train --config=configs/lra_fnet_ar.py:smoke --workdir=/tmp/smoke

FNetAR replaces the attention sublayer by a parameter-free prefix DFT (position t takes the last
frequency of the DFT of x_0..x_t, then FNet's hidden-axis DFT; jaxattn/attention/fnet_ar.py). It
is always causal, so on LRA's classification tasks each position sees only its prefix. Padded
tokens are zeroed before mixing (exact for right padding, no opt-in needed, unlike fnet).
Hyper-parameters: hidden_fft=True (FNet's 2-D form; the note's own setting is a language model).
Published LRA results: none (the note reports WikiText-103 only: 25.8 ppl).
"""

from configs import lra_base


def get_config(arg: str | None = None):
    return lra_base.get_lra_config("fnet_ar", arg, hidden_fft=True)
