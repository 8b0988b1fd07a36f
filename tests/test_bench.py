"""`python -m bench` runs and writes its results file in the documented shape (speed is not tested here)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {"scenario", "metric", "value", "unit", "baseline", "ratio"}


def test_reference_case_quick_writes_results(tmp_path):
    # bench/ is a developer tool, not an installed package: it is found through PYTHONPATH, as `make bench`
    # finds it through the working directory.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "bench", "--scenario", "reference_case", "--quick"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    rows = json.loads((tmp_path / "var" / "bench" / "results.json").read_text())
    assert isinstance(rows, list) and rows
    for r in rows:
        assert set(r) == FIELDS
        assert r["scenario"] == "reference_case"
        assert isinstance(r["value"], (int, float)) and r["value"] > 0
        assert r["ratio"] is None or r["ratio"] > 0
    by_metric = {r["metric"]: r for r in rows}
    assert by_metric["cases_per_s"]["baseline"] == "bare_spiffworkflow"
    assert by_metric["cases_per_s"]["unit"] == "cases/s"
    assert by_metric["bare_spiffworkflow_cases_per_s"]["value"] > 0
    assert by_metric["state_bytes_per_waiting_case"]["unit"] == "bytes"
    assert "cases_per_s" in done.stdout  # the table is printed
    # The temporary database is gone: only the results file is left behind.
    assert [p.name for p in (tmp_path / "var" / "bench").iterdir()] == ["results.json"]
