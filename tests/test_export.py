"""export.py: each format loads without this project's code and gives the checkpoint's outputs."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image
import tensorflow as tf

from evaluation import scoring
from options import TrainingConfig
import export
from data import color
from inference.loading import load_for_inference
from models.architecture import Architecture
from models.generator import plain_generator_from
from models.generator import build_generator
from tests.helpers import TINY_ENCODER, random_batch


CHECKPOINT_MODEL = "unet"  # conftest.py: a U-Net after 3 steps


def test_the_plain_generator_has_the_variables_of_the_memory_saving_one_in_order():
    ours, plain = build_generator(TINY_ENCODER, 1), build_generator(TINY_ENCODER, 1, implementation="plain")
    assert [tuple(v.shape) for v in ours.variables] == [tuple(v.shape) for v in plain.variables]
    copy = plain_generator_from(ours, Architecture("unet", TINY_ENCODER, 1, 16))
    L = tf.random.uniform((2, 16, 16, 1), -1, 1, seed=1)
    np.testing.assert_allclose(copy(L, training=False), ours(L, training=False), atol=1e-5)


def test_every_format_loads_without_the_project_and_matches_the_checkpoint(checkpoint, tmp_path):
    out = tmp_path / "exported"
    assert export.main(["--checkpoint", str(checkpoint), "--output", str(out),
                        "--format", "keras,saved_model,onnx,litert"]) == 0
    report = json.loads((out / "export.json").read_text())
    assert set(report["formats"]) == {"keras", "saved_model", "onnx", "litert"} and report["size_multiple"] == 4
    grey = np.random.default_rng(5).integers(0, 256, (2, 16, 16, 1), dtype=np.uint8)
    np.save(tmp_path / "grey.npy", grey)
    L, _ = color.rgb_to_model_input(tf.repeat(tf.constant(grey), 3, axis=-1))
    L_wide = tf.image.resize(L, (16, 32))  # another width than the export's probe: sizes are dynamic
    np.save(tmp_path / "L.npy", L_wide.numpy())
    # A fresh interpreter that cannot import this project (-I: no script folder, no PYTHONPATH).
    code = textwrap.dedent(f"""
        import json, sys
        import numpy as np, keras, onnxruntime, tensorflow as tf
        assert not any("work/main" in p and "site-packages" not in p for p in sys.path), sys.path
        try:
            import models
            sys.exit("the project is importable")
        except ImportError:
            pass
        grey = np.load({str(tmp_path / 'grey.npy')!r})
        L = tf.constant(grey, tf.float32)  # the caller normalises: L* of a grey level, / 50 - 1
        net = keras.models.load_model({str(out / 'generator.keras')!r})
        served = tf.saved_model.load({str(out / 'saved_model')!r}).signatures["serving_default"](grey=tf.constant(grey))
        interpreter = tf.lite.Interpreter(model_path={str(out / 'generator.tflite')!r})
        L = np.load({str(tmp_path / 'L.npy')!r})
        session = onnxruntime.InferenceSession({str(out / 'generator.onnx')!r})
        onnx_ab = session.run(None, {{"L": L}})[0]
        print(json.dumps({{"rgb": served["rgb"].numpy().tolist(), "ab": served["ab"].numpy().tolist(),
                          "onnx": onnx_ab.tolist(), "keras": net(L, training=False).numpy().tolist(),
                          "layers": sorted({{type(l).__module__.split(".")[0] for l in net.layers}})}}))
    """)
    result = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["layers"] == ["keras"]  # Keras' own layers only
    model, _, _ = load_for_inference(checkpoint, mixed_precision=False)
    want_wide = model.generator(L_wide, training=False).numpy()
    np.testing.assert_allclose(np.array(got["keras"]), want_wide, atol=export.TOLERANCE["keras"])
    np.testing.assert_allclose(np.array(got["onnx"]), want_wide, atol=export.TOLERANCE["onnx"])
    np.testing.assert_allclose(np.array(got["ab"]), model.generator(L, training=False).numpy(), atol=1e-5)
    expected_rgb = scoring.to_uint8(scoring.colorize(model, L))  # test.py's pixels
    assert np.abs(np.array(got["rgb"]).astype(int) - expected_rgb.astype(int)).max() <= 1


def test_a_bad_checkpoint_or_format_is_one_line(tmp_path, capsys):
    (tmp_path / "x.h5").write_text("no")
    assert export.main(["--checkpoint", str(tmp_path / "x.h5"), "--output", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not an HDF5 file" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as e:
        export.parse_options(["--checkpoint", "c", "--output", "o", "--format", "keras,pickle"])
    assert e.value.code == 2 and "unknown pickle" in capsys.readouterr().err


def test_colorize_and_test_py_take_the_exported_generator_where_they_take_a_checkpoint(checkpoint, tmp_path, capsys):
    import colorize
    import test as test_script
    from tests.helpers import write_images
    out = tmp_path / "exported"
    assert export.main(["--checkpoint", str(checkpoint), "--output", str(out), "--format", "keras"]) == 0
    photos = write_images(tmp_path / "photos", 3, size=(20, 36))
    for name, source in (("from_h5", checkpoint), ("from_keras", out / "generator.keras")):
        assert colorize.main([str(photos), "--checkpoint", str(source), "--output", str(tmp_path / name),
                              "--no-mixed-precision", "--no-progress"]) == 0
    for photo in sorted(photos.iterdir()):
        a, b = (np.asarray(Image.open(tmp_path / name / photo.name), np.int16) for name in ("from_h5", "from_keras"))
        assert a.shape == (20, 36, 3) and np.abs(a - b).max() <= 1  # float32 both; the order of operations differs
    scores = {}
    for name, source in (("h5", checkpoint), ("keras", out)):  # an export folder resolves to its generator.keras
        assert test_script.main(["--checkpoint", str(source), "--dataset", "folder", "--dataset-path", str(photos),
                                 "--output", str(tmp_path / f"scores_{name}"), "--no-mixed-precision",
                                 "--no-progress"]) == 0
        scores[name] = json.loads((tmp_path / f"scores_{name}" / "results.json").read_text())[1]
    assert scores["keras"]["Checkpoint"].endswith("generator.keras")
    assert abs(scores["keras"]["MAE"] - scores["h5"]["MAE"]) < 0.02 and scores["keras"]["Step"] == 3
    capsys.readouterr()
    # Without its export.json the file still colorizes, given --size; test.py says what is missing.
    (out / "export.json").unlink()
    assert colorize.main([str(photos), "--checkpoint", str(out), "--output", str(tmp_path / "c"), "--no-progress"]) == 1
    assert "pass --size" in capsys.readouterr().err
    assert colorize.main([str(photos), "--checkpoint", str(out), "--output", str(tmp_path / "c"), "--size", "16",
                          "--no-progress"]) == 0
    assert test_script.main(["--checkpoint", str(out), "--dataset", "folder", "--dataset-path", str(photos),
                             "--output", str(tmp_path / "s"), "--no-progress"]) == 1
    assert "does not name its dataset and image size" in capsys.readouterr().err
    assert test_script.main(["--checkpoint", str(out / "generator.keras"), "--bn-statistics", "batch",
                             "--output", str(tmp_path / "s"), "--no-progress"]) == 1
    assert "moving statistics only" in capsys.readouterr().err
    (tmp_path / "fake.keras").write_bytes(b"not a zip")
    assert colorize.main([str(photos), "--checkpoint", str(tmp_path / "fake.keras"), "--output",
                          str(tmp_path / "d"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a Keras model" in err[0], err


def test_a_float16_export_is_half_the_file_runs_in_float32_and_is_checked_when_loaded(checkpoint, tmp_path, capsys):
    import colorize
    from tests.helpers import write_images
    for name, extra in (("full", []), ("half", ["--float16"])):
        assert export.main(["--checkpoint", str(checkpoint), "--output", str(tmp_path / name), "--format", "keras",
                            *extra]) == 0
    sizes = {name: (tmp_path / name / "generator.keras").stat().st_size for name in ("full", "half")}
    report = json.loads((tmp_path / "half" / "export.json").read_text())["formats"]["keras"]
    assert report["weights_dtype"] == "float16" and report["max_error"] <= export.TOLERANCE["keras_float16"]
    weights = sum(int(np.prod(v.shape)) for v in load_for_inference(checkpoint)[0].generator.weights)
    assert sizes["full"] - sizes["half"] > 0.9 * 2 * weights  # two bytes fewer per weight
    model = load_for_inference(tmp_path / "half")[0]
    assert {v.dtype for v in model.generator.variables} <= {"float32", "int64", "uint32"}  # widened on loading
    # A damaged or replaced file is refused with one line naming it, never a silent wrong colorization.
    photos = write_images(tmp_path / "photos", 2, size=(20, 36))
    path = tmp_path / "half" / "generator.keras"
    path.write_bytes((tmp_path / "full" / "generator.keras").read_bytes())  # another valid model
    capsys.readouterr()
    assert colorize.main([str(photos), "--checkpoint", str(path), "--output", str(tmp_path / "c"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "damaged or was replaced" in err[0], err
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


def test_export_builds_the_network_the_checkpoint_names(tmp_path):
    from models.architecture import Architecture
    from models.colorization import ColorizationModel
    config = Architecture("unet", TINY_ENCODER, 1, 16, generator="unet-narrow")
    model = ColorizationModel(config, TrainingConfig(batch_size=4))
    model.train_step(*random_batch())
    (tmp_path / "run").mkdir()
    model.save(tmp_path / "run" / "step_00000001.h5", {"dataset": "folder", "image_size": 16}, {"epoch": 0, "position": 4})
    assert export.main(["--checkpoint", str(tmp_path / "run"), "--output", str(tmp_path / "out"), "--format", "keras"]) == 0
    exported = load_for_inference(tmp_path / "out")[0].generator
    assert exported.count_params() == model.generator.count_params()  # the narrow U-Net, not the paper's


def test_export_into_a_folder_of_other_files_replaces_only_its_own_and_refuses_foreign_files(checkpoint, tmp_path,
                                                                                              capsys):
    import h5py
    out = tmp_path / "shared_folder"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    (out / "generator.keras").write_bytes(b"an older export")
    assert export.main(["--checkpoint", str(checkpoint), "--output", str(out), "--format", "keras"]) == 0
    assert (out / "notes.txt").read_text() == "the user's"
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "generator.keras", "notes.txt"]
    capsys.readouterr()
    foreign = tmp_path / "weights.h5"  # an HDF5 file that is not one of this project's checkpoints
    with h5py.File(foreign, "w") as f:
        f["layer/kernel"] = np.zeros(3)
    truncated = tmp_path / "step_00000003.h5"
    truncated.write_bytes(checkpoint.read_bytes()[:5000])
    for bad in (foreign, truncated):
        before = bad.read_bytes()
        assert export.main(["--checkpoint", str(bad), "--output", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and str(bad) in err[0], err
        assert bad.read_bytes() == before and not (tmp_path / "o").exists()
