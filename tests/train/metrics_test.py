"""Metric sinks: metrics.jsonl rows, TensorBoard event files, and no PyTorch in the process."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import sys
from jaxattn.train import metrics
w = metrics.MetricWriter(sys.argv[1])
w.write_scalars(3, {"loss": 1.5, "bad": float("nan")}, split="train")
w.close()
print("torch" in sys.modules)
import importlib.util
if importlib.util.find_spec("torch"):
    import torch  # still importable afterwards
"""


def test_writer_rows_event_files_and_no_torch(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path)], capture_output=True, text=True, check=True
    )
    # tensorboardX imports torch when it is installed (~480 MiB of RSS); the writer keeps it out.
    assert out.stdout.split() == ["False"]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 3, "split": "train", "loss": 1.5, "bad": "nan"}]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
