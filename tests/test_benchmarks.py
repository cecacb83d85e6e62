"""Benchmark scripts run (on fixtures, tiny sizes); their numbers are measured by hand, not here."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_build_kg_benchmark_runs(data_dir, tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "experiments/bench/bench_build_kg.py"), "--data-dir",
                          str(data_dir), "--max-words", "200", "--processes", "1", "--json", str(tmp_path / "r.json")],
                         capture_output=True, text=True, check=True)
    assert "(b) build-kg words/s" in out.stdout
    import json

    result = json.loads((tmp_path / "r.json").read_text())
    assert result["words"] > 100 and result["rows"][0]["ratio_build_over_spacy"] > 0
