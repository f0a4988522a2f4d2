"""A sweep killed halfway (SIGINT, SIGKILL) loses nothing it stored, and the re-run completes only
the missing runs, ending with the table of an uninterrupted sweep.

The sweep runs in a subprocess in its own session (process group), on one local Dask worker, and
is signalled as a terminal would do it: the whole group; the re-run runs in-process (``--workers 0``)
to keep the test short. 12 runs of ``schedulers.yaml`` over two
simulated days (~0.3 s each).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cluster_sim.experiment.sweep import sweep
from cluster_sim.experiment.sweep_store import ResultStore, read_store

REPO = Path(__file__).resolve().parents[2]
EXP = str(REPO / "workloads" / "schedulers.yaml")
FACTOR = ("policy.training.scheduler", ["fifo", "sjf", "easy"])
ARGS = ["sweep", EXP, "--set", "duration=2d", "--factor", f"{FACTOR[0]}={','.join(FACTOR[1])}", "--seeds", "4"]
TOTAL = 12
WALL = ("sim.wall_s", "sim.events_per_s", "sim.jobs_per_s", "sim.requests_per_wall_s")
CLI = "import sys; from cluster_sim.cli import main; sys.exit(main(sys.argv[1:]))"


def _cli(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", CLI, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def _group_gone(pgid: int, within: float) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    """The uninterrupted sweep's table (in this process, no Dask)."""
    res = sweep(EXP, {FACTOR[0]: FACTOR[1]}, seeds=4, overrides={"duration": "2d"}, workers=0)
    return res.runs


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_killed_sweep_resumes_with_only_the_missing_runs(tmp_path, sig, reference):
    store = tmp_path / "store"
    proc = _cli([*ARGS, "--workers", "1", "--store", str(store), "--json"])
    pgid = proc.pid  # its own session: the group id is its pid
    try:
        deadline = time.monotonic() + 45
        while len(ResultStore(store).keys()) < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the sweep stored nothing in 45 s"
            time.sleep(0.02)
        os.killpg(pgid, sig)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(pgid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode != 0  # it did not finish
    assert _group_gone(pgid, 15), "the sweep left processes running"
    stored = ResultStore(store).read()  # every entry reads back whole: no corrupt or partial file
    done = len(stored)
    assert 3 <= done < TOTAL, done
    assert all(r["status"] == "ok" and r["summary"] for r in stored.values())
    assert len(read_store(store)) == done

    again = _cli([*ARGS, "--workers", "0", "--store", str(store), "--json"])  # in-process: no cluster start-up
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    res = json.loads(out)
    assert res["executed"] == TOTAL - done and res["skipped"] == done and res["failed"] == 0
    assert len(ResultStore(store).keys()) == TOTAL
    got = pd.DataFrame(res["runs"])
    assert list(got["key"]) == list(reference["key"])
    for col in reference.columns:
        if col in WALL or not pd.api.types.is_numeric_dtype(reference[col]):
            continue
        pd.testing.assert_series_equal(got[col].astype(float), reference[col].astype(float), check_names=False,
                                       obj=col)
