"""Attention speed and memory benchmark: `python -m jaxattn.bench` (see `__main__` for flags).

Modules:
  cases   — what one measurement is (a `Case`), the default and `--quick` grids, input and mask
            construction, the FLOP model of exact attention.
  worker  — measures one case in its own process (`python -m jaxattn.bench.worker '<case json>'`)
            so peak RSS is per case and an out-of-memory crash loses only that case.
  report  — JSON, Markdown tables with ratios to the references, PNG plots.
"""
