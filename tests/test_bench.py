import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
def test_bench_quick_runs_and_writes_well_formed_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "bench.py", "--quick", "--json", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["quick"] is True
    assert data["step cifar10 gan float32"]["images_per_s"] > 0
    assert data["step cifar10 gan float32"]["traces"] == 1
    assert "| measurement | value | note |" in result.stdout
