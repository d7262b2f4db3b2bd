"""The sweep root on disk: sweep.json, each point's workdir and status, failure records, lock.

The layout is described in `jaxattn/sweeps/__init__.py`. Every launcher produces it: the trainer
writes the point workdir, the launcher sends its output to log.txt, and the runner writes the
rest. Status is read from the files alone, so `--collect_only`, a rerun and a runner on another
machine agree on it.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

from jaxattn import sweeps
from jaxattn.sweeps import points

SWEEP_FILE = "sweep.json"
LOCK_FILE = ".sweep.lock"
RESULTS_FILE = "results.json"  # the trainer's, in a point workdir; the table's, in the root
LOG_FILE = "log.txt"
METRICS_FILE = "metrics.jsonl"
FAILED_FILE = "failed.json"

DONE, INTERRUPTED, ERROR, PENDING = "done", "interrupted", "error", "pending"


def point_dir(root: str, name: str) -> str:
    return os.path.join(root, name)


def write_json(path: str, doc: Any) -> None:
    """Writes `doc` whole or not at all (a killed runner never leaves half a file)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2, default=repr)
        f.write("\n")
    os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_json(path: str) -> Any:
    """The JSON in `path`, or None when it is missing or unreadable (e.g. cut by a kill)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------- sweep.json
def sweep_doc(spec: str, shared: dict[str, Any], pts: Sequence[points.Point]) -> dict[str, Any]:
    return {
        "config": spec,
        "overrides": points.canonical(shared),
        "points": [{"name": p.name, "overrides": points.canonical(p.overrides)} for p in pts],
    }


def read_sweep(root: str) -> dict[str, Any] | None:
    return read_json(os.path.join(root, SWEEP_FILE))


def claim(root: str, doc: dict[str, Any], *, write: bool = True) -> list[str]:
    """Writes sweep.json into `root`, or checks that the one there describes the same sweep.

    A sweep that keeps every point of the recorded one (same names, same overrides) and adds
    new points extends it: sweep.json is rewritten and the added names are returned. Any other
    difference (config, shared overrides, a point gone or changed) raises SweepError.
    `write=False` only checks.
    """
    path = os.path.join(root, SWEEP_FILE)
    old = read_sweep(root)
    if old is None:
        if os.path.exists(path):
            raise sweeps.SweepError(
                f"{path} is not readable JSON; move it away or pick another root"
            )
        if write:
            os.makedirs(root, exist_ok=True)
            write_json(path, {**doc, "created": _now()})
        return []
    for key, what in (("config", "config"), ("overrides", "shared overrides")):
        if old.get(key) != doc[key]:
            raise sweeps.SweepError(
                f"{root} holds a different sweep ({what} {old.get(key)!r}, not {doc[key]!r}); "
                "pick another --workdir_root"
            )
    old_points = {p.get("name"): p.get("overrides") for p in old.get("points", [])}
    new_points = {p["name"]: p["overrides"] for p in doc["points"]}
    gone = [n for n in old_points if n not in new_points]
    changed = [n for n in old_points if n in new_points and old_points[n] != new_points[n]]
    if gone or changed:
        detail = ", ".join(
            f"{label}: {names}"
            for label, names in (("missing", gone), ("changed", changed))
            if names
        )
        raise sweeps.SweepError(
            f"{root} holds a different sweep (its points {detail}); pick another --workdir_root"
        )
    added = [n for n in new_points if n not in old_points]
    if added and write:
        write_json(path, {**doc, "created": old.get("created"), "extended": _now()})
    return added


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- point status
def point_results(workdir: str) -> dict[str, Any] | None:
    """The trainer's results.json of a point, or None while the point is not done."""
    results = read_json(os.path.join(workdir, RESULTS_FILE))
    return results if isinstance(results, dict) else None


def status(workdir: str) -> str:
    """done | error | interrupted | pending, from the files in `workdir` alone."""
    if point_results(workdir) is not None:
        return DONE
    if not os.path.isdir(workdir):
        return PENDING
    if os.path.exists(os.path.join(workdir, FAILED_FILE)):
        return ERROR
    return INTERRUPTED


def has_started(workdir: str) -> bool:
    """Whether the trainer got past its data and model setup: it opens metrics.jsonl then."""
    return os.path.exists(os.path.join(workdir, METRICS_FILE))


def record_failure(workdir: str, exit_code: int | None, error: str) -> None:
    write_json(
        os.path.join(workdir, FAILED_FILE),
        {"exit_code": exit_code, "error": error, "time": _now()},
    )


def failure(workdir: str) -> dict[str, Any] | None:
    doc = read_json(os.path.join(workdir, FAILED_FILE))
    return doc if isinstance(doc, dict) else None


def clear_failure(workdir: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(workdir, FAILED_FILE))


def last_line(path: str, offset: int = 0) -> str:
    """The last non-empty line of `path` from byte `offset` on ('' when there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(offset, os.path.getsize(path) - 64 * 1024))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    return lines[-1][:500] if lines else ""


# ----------------------------------------------------------------------------- lock
@contextlib.contextmanager
def locked(root: str) -> Iterator[None]:
    """Holds `root/.sweep.lock` so that two runners never work on one root at once.

    flock is released by the kernel when the holder dies, so a killed runner leaves no stale lock.
    """
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise sweeps.SweepError(
                f"another sweep runner (pid {holder}) is working in {root}; wait for it or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def is_locked(root: str) -> bool:
    """Whether a runner holds `root` now."""
    path = os.path.join(root, LOCK_FILE)
    if not os.path.exists(path):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
