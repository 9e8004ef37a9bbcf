"""Every image reader on a seeded corpus of 200+ hostile files (tests/fuzz_corpus.py): colorize.py,
the web page, train.py's and test.py's folders (at the model's size and at full resolution) and
the Places365 reader. Never a traceback or a hang; each bad file named once with its reason; the
good files done; memory bounded by the pixel limit (--max-megapixels)."""
import re
import subprocess
import sys
from collections import Counter

import pytest

from tests.conftest import ROOT
from tests.fuzz_corpus import LIMIT_MEGAPIXELS, make_corpus

pytestmark = pytest.mark.slow
TIMEOUT = 600  # seconds: a reader that hangs fails the test instead of the suite
PEAK_MB = 2500  # the corpus's bombs claim up to 4.3 gigapixels: read whole, any would pass this
# The peak resident memory of a script, reported by the process itself (as bench.py measures it).
PROBE = ("import runpy, sys\nsys.argv = sys.argv[1:]\n"
         "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
         "finally:\n    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
         "    print('PEAK', int(hwm.split()[1]) // 1024, file=sys.stderr)\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus") / "photos"
    manifest = make_corpus(folder)
    assert len(manifest) >= 200
    return folder, manifest


def run(script, *args):
    """(exit status, stdout, stderr lines, peak MB) of a script run as a user runs it."""
    done = subprocess.run([sys.executable, "-c", PROBE, script, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT)
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    peak = [int(line.split()[1]) for line in lines if line.startswith("PEAK ")]
    return done.returncode, done.stdout, [line for line in lines if not line.startswith("PEAK ")], peak[-1]


def named(lines, folder):
    """{file name: how many lines name it} among the lines that start with a corpus path."""
    pattern = re.compile(rf"(?:skipping )?{re.escape(str(folder))}/([^:/]+): (.+)")
    found = [pattern.match(line) for line in lines]
    return Counter(m.group(1) for m in found if m), {m.group(1): m.group(2) for m in found if m}


def check_named(counts, manifest, seen=None):
    """Each file named at most once; every bad one named (of those the reader saw), no good one."""
    seen = set(manifest) if seen is None else seen
    assert max(counts.values()) == 1, [n for n, c in counts.items() if c > 1]
    assert {n for n in seen if manifest[n] == "bad"} <= set(counts)
    assert not {n for n in counts if manifest[n] == "good"}, {n for n in counts if manifest[n] == "good"}


def test_colorize_py_does_the_good_files_and_names_each_bad_one_once(corpus, checkpoint, tmp_path):
    folder, manifest = corpus
    status, out, err, peak = run("colorize.py", folder, "--checkpoint", checkpoint, "--output", tmp_path / "out",
                                 "--max-megapixels", LIMIT_MEGAPIXELS, "--no-progress")
    done, skipped, failed = map(int, re.match(r"(\d+) colorized, (\d+) skipped, (\d+) failed",
                                              out.strip().splitlines()[-1]).groups())
    counts, reasons = named(err, folder)
    assert status == 1 and skipped == 0 and done + failed == len(manifest) and failed == len(counts)
    check_named(counts, manifest)
    assert len(list((tmp_path / "out").glob("*.png"))) == done
    assert all("over the limit of 5 (--max-megapixels)" in reasons[n] for n in counts if n.startswith("bomb"))
    assert all("(1/40 of --max-megapixels 5)" in reasons[n] for n in counts if n.startswith("strip"))
    assert peak < PEAK_MB


def test_training_and_test_py_on_the_corpus_skip_each_bad_file_once(corpus, checkpoint, tmp_path):
    folder, manifest = corpus
    status, _, err, peak = run("train.py", "--dataset", "folder", "--dataset-path", folder, "--image-size", "16",
                               "--batch-size", "4", "--epochs", "1", "--eval-images", "-1", "--model", "unet",
                               "--max-megapixels", LIMIT_MEGAPIXELS, "--checkpoints-path", tmp_path / "run",
                               "--no-progress")
    assert status == 0, err[-20:]
    counts, _ = named(err, folder)
    check_named(counts, manifest)
    assert peak < PEAK_MB
    status, _, err, peak = run("test.py", "--checkpoint", checkpoint, "--dataset", "folder", "--dataset-path", folder,
                               "--full-resolution", "--max-megapixels", LIMIT_MEGAPIXELS, "--output", tmp_path / "test",
                               "--no-progress")
    assert status == 0, err[-20:]
    counts, reasons = named(err, folder)
    small = {n for n, why in reasons.items() if "too small to score at full resolution" in why}
    assert small == {"one_pixel.png", "one_pixel.jpg"}  # scored at the model's size only
    check_named(counts - Counter(small), manifest)
    assert (tmp_path / "test" / "results.json").is_file() and peak < PEAK_MB


def test_the_places365_reader_skips_each_bad_file_once(corpus, tmp_path, caplog):
    import os
    from data.datasets import load_source
    from data.pipeline import eval_batches
    folder, manifest = corpus
    val = tmp_path / "places" / "val_256"
    val.mkdir(parents=True)
    for name in manifest:
        os.link(folder / name, val / name)
    source = load_source("places365", tmp_path / "places", "test", 16, max_megapixels=LIMIT_MEGAPIXELS)
    images = sum(int(rgb.shape[0]) for rgb, _, _ in eval_batches(source, 16))
    counts, _ = named([r.getMessage() for r in caplog.records], val)
    check_named(counts, manifest)
    assert images + len(counts) <= len(manifest) and images >= sum(k == "good" for k in manifest.values()) - 1


def test_the_web_page_answers_every_upload_with_a_picture_or_a_clear_refusal(corpus, checkpoint):
    from fastapi.testclient import TestClient

    from web import app as web_app
    folder, manifest = corpus
    app = web_app.create_app(checkpoint, max_pixels=LIMIT_MEGAPIXELS * 1e6, turing_images=2)
    statuses = Counter()
    with TestClient(app) as client:
        for name, kind in sorted(manifest.items()):
            reply = client.post("/api/colorize", files={"file": (name, (folder / name).read_bytes())})
            statuses[reply.status_code] += 1
            if reply.status_code == 200:
                assert reply.content.startswith(b"\x89PNG") and kind != "bad", name
            else:
                assert reply.status_code in (400, 413) and kind != "good", (name, reply.text)
                assert name in reply.json()["detail"]
        assert client.get("/").status_code == 200  # still serving
    assert statuses[200] >= sum(k == "good" for k in manifest.values())
