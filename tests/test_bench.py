import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED


@pytest.mark.slow
def test_bench_quick_runs_and_writes_well_formed_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, "bench.py", "--quick", "--json", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["quick"] is True
    for name in ("step cifar10 gan float32", "step cifar10 gan mixed"):
        assert data[name]["images_per_s"] > 0
        assert data[name]["traces"] == 1  # one trace per input shape
    assert data["pipeline cifar10 pickles"]["images_per_s"] > 0
    assert data["evaluation cifar10 float32 (test.py path)"]["images_per_s"] > 0
    assert data["evaluation cifar10 mixed (--mixed-precision) (test.py path)"]["images_per_s"] > 0
    assert data["mixed / float32 evaluation"]["ratio"] > 0
    assert "bfloat16" in data["machine"]["cpu"]
    assert data["colorize.py 320x240 jpeg"]["seconds"] > 0
    if (SHARED / "cifar10" / "make_cifar10.py").is_file():  # the whole loop needs the real CIFAR-10
        assert data["whole loop cifar10 gan (train.py)"]["images_per_s"] > 0
        assert 100 < data["peak memory cifar10 training"]["peak_mb"] < 24 * 1024
    table = result.stdout.splitlines()
    assert table[0] == "| measurement | value | note |"
    assert len(table) == 2 + sum(1 for key in data if key not in ("machine", "quick"))
