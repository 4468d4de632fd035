"""`benchmarks/server_load.py` runs end to end on a tiny workload on both backends (its figures are not
checked here: speed lives in the benchmark's own output). It once lost its PostgreSQL path when the
test helpers it borrows the throwaway cluster from moved."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_server_benchmark_runs_and_ends_with_its_headline(backend, request):
    if backend == "postgresql":
        request.getfixturevalue("pg")  # skips (or fails in CI) without PostgreSQL, as the server tests do
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "server_load.py"), "--backends", backend,
                        "--groups", "1", "--hits-per-group", "12", "--levels", "2", "--seconds", "2",
                        "--max-per-rater", "6", "--client-processes", "1"],
                       capture_output=True, text=True, timeout=240, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    stored = next(ln for ln in lines if "answers stored = acknowledged" in ln)
    a, b = re.search(r"(\d+) = (\d+)", stored).groups()
    assert a == b and int(a) > 0
    cpu = next(ln for ln in lines if "CPU " in ln and "raters: server" in ln)
    assert re.search(r"= (\d+\.\d+) ms each, the clients (\d+\.\d+) ms each; machine reference (\d+\.\d+) ms",
                     cpu), cpu
    assert re.fullmatch(r"[a-z0-9_]+: [0-9.]+", lines[-1]), lines[-1]
