"""test.py: the comparison table on a run's test split or a folder of photos (at the model's size
and at full resolution), and its refusals of bad checkpoints and options."""
import json

import numpy as np
import pytest

import test as test_script
from tests.conftest import ROOT


@pytest.mark.parametrize("args, message", [
    (["--checkpoint", "missing.h5"], "checkpoint not found"),
    (["--checkpoint", "README.md"], "not an HDF5 file"),
])
def test_test_py_refuses_bad_checkpoints(args, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert test_script.main(args) == 1
    assert message in capsys.readouterr().err


def test_test_py_refuses_max_images_zero(capsys):
    with pytest.raises(SystemExit) as e:
        test_script.main(["--checkpoint", "x.h5", "--max-images", "0"])
    assert e.value.code == 2 and "--max-images must be positive" in capsys.readouterr().err


def one_step_unet_checkpoint(tmp_path):
    """A tiny U-Net after one step, saved as a CIFAR-10 run whose dataset is nowhere."""
    from tests.helpers import tiny_checkpoint
    return tiny_checkpoint(tmp_path / "run" / "step_00000001.h5", "unet", 1,
                           {"dataset": "cifar10", "dataset_path": "/nowhere"})


def test_test_py_scores_a_checkpoint_on_a_folder_of_your_own_photos(tmp_path, capsys):
    from PIL import Image
    from tests.helpers import write_images
    path = one_step_unet_checkpoint(tmp_path)
    photos = write_images(tmp_path / "photos" / "2019", 3, size=(40, 50))  # any depth, any size
    write_images(tmp_path / "photos", 2, size=(30, 30), seed=4, ext="jpg")
    Image.fromarray(np.full((20, 20, 3), 90, np.uint8)).save(photos / "grey.png")  # not scored
    assert test_script.main(["--checkpoint", str(path), "--dataset", "folder", "--dataset-path",
                             str(tmp_path / "photos"), "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Evaluating on the colour photos among 6 images of folder" in out  # the grey one is dropped
    rows = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {r["Dataset"] for r in rows} == {"folder"} and len(rows) == 2
    with pytest.raises(SystemExit):
        test_script.parse_options(["--checkpoint", str(path), "--dataset", "folder"])  # needs --dataset-path


def test_test_py_scores_your_photos_at_full_resolution_with_colorize_pys_pixels(tmp_path, capsys):
    import colorize
    from evaluation import metrics
    from PIL import Image
    from tests.helpers import write_images
    path = one_step_unet_checkpoint(tmp_path)
    photos = write_images(tmp_path / "photos", 3, size=(40, 70))
    Image.fromarray(np.full((20, 20, 3), 90, np.uint8)).save(photos / "grey.png")  # not scored
    assert test_script.main(["--checkpoint", str(path), "--dataset", "folder", "--dataset-path", str(photos),
                             "--full-resolution", "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    rows = json.loads((tmp_path / "out" / "results.json").read_text())
    full = [r for r in rows if r["Dataset"].startswith("folder, full resolution")]
    assert [r["Network"] for r in full] == ["no colour (a* = b* = 0)", "U-Net (CNN)"] and len(rows) == 4
    assert float(full[0]["Colourfulness"].split()[0]) < 0.5  # grey, up to the rounding to uint8
    # The model's row scores exactly the pixels colorize.py writes for these photos.
    assert colorize.main([str(photos), "--checkpoint", str(path), "--output", str(tmp_path / "colorized"),
                          "--no-progress"]) == 0
    maes = [metrics.mae_rgb(np.asarray(Image.open(p))[None].astype(np.float32),
                            np.asarray(Image.open(tmp_path / "colorized" / p.name))[None].astype(np.float32))
            for p in sorted(photos.glob("img_*.png"))]
    assert full[1]["MAE"] == round(float(np.mean(maes)), 2)
    with pytest.raises(SystemExit):
        test_script.parse_options(["--checkpoint", str(path), "--full-resolution"])  # photo folders only
    assert "--full-resolution scores photo folders" in capsys.readouterr().err
