"""Reproducing the published LRA tables: every attention kind on every task, over seeds.

  python -m experiments.reproduce lra --workdir_root=runs/reproduce --size=small --parallel=2

Modules (import the module, not its names):
  published.py  LRA Table 1, Nyströmformer Table 3, FNet's S4-style row; our kind -> published row
  grid.py       the rows (discovered from configs/ and the registry), the cells on disk, each
                cell's sweep (jaxattn.sweeps) and running the cells' jobs
  table.py      the table from the cells' files: lra_table.json and lra_table.md
  plot.py       lra_table.png

Layout (one sweep root of jaxattn.sweeps per cell; grid = <setup>-<size>[-<config string>]):

  <root>/<grid>/lra_table.{md,json,png}    the table (rewritten after every run)
  <root>/<grid>/<task>/<kind>/             the cell's sweep root: sweep.json, results.{json,md}
  <root>/<grid>/<task>/<kind>/seed=<s>/    one trainer workdir (results.json: test_accuracy)

The table lives in the grid's directory rather than in <root> so that one root holds several
grids (setups, sizes) without one table overwriting another.
"""
