"""The photo model that ships in pretrained/photo/: small, documented, checked, opened by plain Keras,
used by colorize.py and serve.py when no --checkpoint is given, and better than no colour."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from models import checkpoint as ckpt
from options import SHIPPED_MODEL


def test_the_shipped_model_is_one_small_documented_file_whose_digest_is_recorded():
    assert SHIPPED_MODEL.is_file(), f"{SHIPPED_MODEL} is missing"
    assert SHIPPED_MODEL.stat().st_size <= 30e6
    meta = json.loads(SHIPPED_MODEL.with_name("export.json").read_text())
    assert meta["formats"]["keras"]["sha256"] == ckpt.sha256(SHIPPED_MODEL)
    assert meta["formats"]["keras"]["weights_dtype"] == "float16"
    card = SHIPPED_MODEL.with_name("README.md").read_text()
    for needed in ("Imagenette", "ImageNet", "python train.py", "MAE"):  # data, terms, command, scores
        assert needed in card, needed


def test_it_loads_with_plain_keras_in_a_process_that_never_imported_the_project(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import keras, numpy as np
        net = keras.models.load_model({str(SHIPPED_MODEL)!r})
        L = np.linspace(-1, 1, 128 * 128, dtype="float32").reshape(1, 128, 128, 1)
        ab = np.asarray(net(L, training=False), dtype="float32")
        assert ab.shape == (1, 128, 128, 2) and np.isfinite(ab).all() and np.abs(ab).max() <= 1, ab.shape
        project = {{"models", "photos", "options", "data", "colorize", "train"}} & set(sys.modules)
        assert not project, project
        print("ok", float(np.abs(ab).mean()))
    """)
    result = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[0] == "ok" and float(result.stdout.split()[1]) > 0.005  # it does colour


def test_colorize_and_serve_use_it_when_no_checkpoint_is_given(tmp_path, capsys):
    import colorize
    import serve
    from tests.helpers import write_images
    photos = write_images(tmp_path / "photos", 2, size=(96, 144))
    assert colorize.main([str(photos), "--output", str(tmp_path / "default"), "--no-progress"]) == 0
    assert str(SHIPPED_MODEL) in capsys.readouterr().out
    assert colorize.main([str(photos), "--checkpoint", str(SHIPPED_MODEL), "--output", str(tmp_path / "given"),
                          "--no-progress"]) == 0
    for photo in sorted(photos.iterdir()):
        a, b = (np.asarray(Image.open(tmp_path / name / photo.name)) for name in ("default", "given"))
        assert a.shape == (96, 144, 3) and np.array_equal(a, b)
    assert serve.parse_options([]).checkpoint == str(SHIPPED_MODEL)


@pytest.mark.slow
def test_it_colours_the_places365_photos_better_than_no_colour(shared_datasets, tmp_path):
    """Unseen photos (Places365, not Imagenette) at full resolution: a broken model fails here."""
    import test as test_script
    photos = shared_datasets / "places365-sample"
    if not photos.is_dir():
        pytest.skip(f"{photos} not found")
    assert test_script.main(["--checkpoint", str(SHIPPED_MODEL), "--dataset", "folder", "--dataset-path", str(photos),
                             "--full-resolution", "--output", str(tmp_path), "--no-progress"]) == 0
    rows = [r for r in json.loads((tmp_path / "results.json").read_text()) if r["Dataset"].startswith("folder, full resolution")]
    none, model = rows
    assert none["Network"].startswith("no colour") and model["MAE"] < none["MAE"], rows
    colourfulness = [float(r["Colourfulness"].split()[0]) for r in (none, model)]
    assert colourfulness[1] > 5 * max(colourfulness[0], 0.5), rows  # colour, not a grey photo
