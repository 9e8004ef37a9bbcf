"""export.py: each format loads without this project's code and gives the checkpoint's outputs."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import evaluation
import export
from data import color
from models.colorization import load_for_inference
from models.generator import build_generator as plain_generator, plain_generator_from
from models.lowmem.generator import build_generator
from tests.helpers import TINY_ENCODER, random_batch, tiny_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny U-Net after a few steps (BatchNorm statistics moved away from their start)."""
    model = tiny_model("unet")
    for seed in range(3):
        model.train_step(*random_batch(seed=seed))
    path = tmp_path_factory.mktemp("run") / "step_00000003.h5"
    model.save(path, {"dataset": "folder", "image_size": 16, "batch_size": 4}, {"epoch": 0, "position": 12})
    return path


def test_the_plain_generator_has_the_variables_of_the_memory_saving_one_in_order():
    ours, plain = build_generator(TINY_ENCODER, 1), plain_generator(TINY_ENCODER, 1)
    assert [tuple(v.shape) for v in ours.variables] == [tuple(v.shape) for v in plain.variables]
    copy = plain_generator_from(ours, TINY_ENCODER, 1)
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
    expected_rgb = evaluation.to_uint8(evaluation.colorize(model, L))  # test.py's pixels
    assert np.abs(np.array(got["rgb"]).astype(int) - expected_rgb.astype(int)).max() <= 1


def test_a_bad_checkpoint_or_format_is_one_line(tmp_path, capsys):
    (tmp_path / "x.h5").write_text("no")
    assert export.main(["--checkpoint", str(tmp_path / "x.h5"), "--output", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "not an HDF5 file" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as e:
        export.parse_options(["--checkpoint", "c", "--output", "o", "--format", "keras,pickle"])
    assert e.value.code == 2 and "unknown pickle" in capsys.readouterr().err
