"""Export a checkpoint's generator for use without this project's code.

    python export.py --checkpoint checkpoints/cifar10_gan --output exported/ [--format keras,saved_model,onnx,litert]

- `generator.keras`: the U-Net in Keras' own layers (models/generator.py), float32, BatchNorm's moving
  statistics. In: L* normalised, L / 50 - 1, shape (batch, H, W, 1), H and W multiples of
  2^(stride-2 layers) (16 for CIFAR-10, 128 for Places365). Out: a*b* / 110 (tanh), (batch, H, W, 2).
  `keras.models.load_model("generator.keras")` opens it in any Python with Keras 3.
- `saved_model/`: a TensorFlow SavedModel whose `serving_default` signature takes grey images and
  returns colour ones: in `grey`, uint8 (batch, H, W, 1) (H, W as above); out `rgb`, uint8
  (batch, H, W, 3), and `ab`, the network's float32 output. Its Lab conversions are this project's
  (data/color.py): the same pixels as test.py's sample grids.
- `generator.onnx` (ONNX opset of tf2onnx, through Keras' Model.export): the network as in
  generator.keras. Input `L`, float32 (batch, H, W, 1); output `ab`-values named `Identity:0`,
  float32 (batch, H, W, 2); batch, height and width are dynamic. Checked with onnxruntime.
- `generator.tflite` (LiteRT, Keras' Model.export): the network as in generator.keras (input and
  output as there; resize the interpreter's input tensor to your batch and size).

Each format's output is checked against the checkpoint's before export.py reports success
(tolerances in TOLERANCE; tests/test_export.py).
"""
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

from util.quiet import quiet_tensorflow
from util.script import start_script

if __name__ == "__main__":
    start_script()
    quiet_tensorflow()  # before TensorFlow's first import

import numpy as np
import tensorflow as tf

from data import color
from models import checkpoint as ckpt
from inference.loading import load_exported, load_for_inference
from models.generator import plain_generator_from
from models.presets import downsampling_factor
from options import Parser, add_checkpoint, add_weights
from util import atomic

FORMATS = ("keras", "saved_model", "onnx", "litert")
# Largest absolute difference allowed from the checkpoint's own float32 generator on a*b* / 110
# (float32 everywhere; only the order of operations differs) and on the SavedModel's uint8 RGB.
TOLERANCE = {"keras": 1e-5, "saved_model": 1e-5, "onnx": 1e-4, "litert": 1e-4, "rgb_levels": 1,
             "keras_float16": 2e-2}  # float16 weights: 11 bits of mantissa per weight


class ExportError(Exception):
    pass


def parse_options(argv=None):
    p = Parser(description="Export a checkpoint's generator (Keras, SavedModel, ONNX, LiteRT).")
    add_checkpoint(p)
    p.add_argument("--output", required=True, help="folder to write the exported files into")
    add_weights(p)
    p.add_argument("--format", default="keras,saved_model",
                   help=f"comma-separated, of {', '.join(FORMATS)} (default: keras,saved_model)")
    p.add_argument("--float16", action="store_true",
                   help="generator.keras with float16 weights: half the file (the shipped photo model); "
                        "this project loads it back into float32, other formats stay float32")
    opt = p.parse_args(argv)
    opt.formats = [f.strip() for f in opt.format.split(",") if f.strip()]
    unknown = [f for f in opt.formats if f not in FORMATS]
    if unknown or not opt.formats:
        p.error(f"--format: unknown {', '.join(unknown) or '(none given)'}; valid: {', '.join(FORMATS)}")
    return opt


class Colorizer(tf.Module):
    """The SavedModel: grey uint8 images in, colour uint8 images (and a*b*) out."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 1], tf.uint8, name="grey")])
    def serve(self, grey):
        L, _ = color.rgb_to_model_input(tf.repeat(grey, 3, axis=-1))  # grey: R = G = B
        ab = tf.cast(self.generator(L, training=False), tf.float32)
        return {"rgb": color.to_uint8(color.model_output_to_rgb(L, ab)), "ab": ab}


def probe_input(size, factor, seed=0):
    """A few grey test images at a size the network accepts."""
    size = max(factor, size // factor * factor)
    return np.random.default_rng(seed).integers(0, 256, (2, size, size, 1), dtype=np.uint8)


def check(name, got, want, tolerance):
    error = float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))))
    if not error <= tolerance:
        raise ExportError(f"{name}: output differs from the checkpoint's by {error:g} (allowed {tolerance:g})")
    return error


def export(opt):
    model, options, state = load_for_inference(opt.checkpoint, mixed_precision=False, weights=opt.weights)
    architecture = model.architecture
    factor = downsampling_factor(architecture.encoder)
    plain = plain_generator_from(model.generator, architecture)
    out = atomic.writable_folder(opt.output)
    grey = probe_input(architecture.image_size, factor)
    L, _ = color.rgb_to_model_input(tf.repeat(grey, 3, axis=-1))
    want = model.generator(L, training=False).numpy()
    plain(L, training=False)  # Keras exports only a model that has been called
    report = {"checkpoint": str(ckpt.resolve_checkpoint(opt.checkpoint)), "step": state["step"],
              "model": architecture.model, "dataset": options.get("dataset"), "image_size": architecture.image_size,
              "size_multiple": factor, "formats": {},
              "weights": model.weights_used,  # "ema": the weight average of train.py --g-ema
              # test.py, colorize.py and serve.py read the run's options and state from here when
              # they are given generator.keras instead of a checkpoint.
              "options": options, "state": state}

    atomic.remove_temporaries(out, orphans_only=True)  # of an export.py killed mid-write
    if "keras" in opt.formats:
        path, staged = out / "generator.keras", atomic.temporary_name(out / "generator.keras")
        keras_net = plain_generator_from(model.generator, architecture, "float16") if opt.float16 else plain
        try:
            keras_net.save(str(staged))
            reloaded = load_exported(staged, check_digest=False)[0]  # as test.py and colorize.py will run it
            report["formats"]["keras"] = {
                "file": path.name, "weights_dtype": "float16" if opt.float16 else "float32",
                "sha256": ckpt.sha256(staged),  # checked when loaded: a damaged or replaced file is refused
                "max_error": check("generator.keras", reloaded.predict_ab(L).numpy(), want,
                                   TOLERANCE["keras_float16" if opt.float16 else "keras"])}
            replace_keras(staged, path, report)
        finally:
            staged.unlink(missing_ok=True)
    if "saved_model" in opt.formats:
        # Written and checked under a temporary name, then put in place: a kill at any moment
        # leaves the previous SavedModel or the new one (util/atomic.replace_folder).
        path, staged = out / "saved_model", atomic.temporary_name(out / "saved_model")
        module = Colorizer(plain)
        try:
            tf.saved_model.save(module, str(staged), signatures={"serving_default": module.serve})
            served = tf.saved_model.load(str(staged)).signatures["serving_default"](grey=tf.constant(grey))
            expected_rgb = color.to_uint8(color.model_output_to_rgb(L, want)).numpy()
            report["formats"]["saved_model"] = {"folder": path.name, "max_error": check(
                "saved_model ab", served["ab"].numpy(), want, TOLERANCE["saved_model"]),
                "max_rgb_levels": check("saved_model rgb", served["rgb"].numpy(), expected_rgb,
                                        TOLERANCE["rgb_levels"])}
            atomic.replace_folder(staged, path)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    if "onnx" in opt.formats:
        path = out / "generator.onnx"
        export_onnx(plain, path)
        report["formats"]["onnx"] = {"file": path.name, "max_error": check(
            "generator.onnx", run_onnx(path, L.numpy()), want, TOLERANCE["onnx"])}
    if "litert" in opt.formats:
        path = out / "generator.tflite"
        export_litert(plain, path)
        got = run_litert(path, L.numpy())
        report["formats"]["litert"] = {"file": path.name,
                                       "max_error": check("generator.tflite", got, want, TOLERANCE["litert"])}
    atomic.write_text(out / "export.json", json.dumps(report, indent=2) + "\n")
    return report


def replace_keras(staged, path, report):
    """Puts the checked generator.keras in place so that a kill at any moment leaves an export that
    loads: first a record that names the new file's SHA-256 and keeps the previous record (the
    loader takes whichever of the two the file on disk matches), then the file."""
    record = path.with_name("export.json")
    try:
        previous = json.loads(record.read_text()) if record.exists() else None
    except (OSError, ValueError):
        previous = None
    pending = {**report, **({"previous": previous} if isinstance(previous, dict) else {})}
    atomic.write_text(record, json.dumps(pending, indent=2) + "\n")
    with open(staged, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(staged, path)


def export_litert(plain, path):
    """LiteRT through Keras' Model.export: any batch and size (resize the interpreter's input)."""
    atomic.atomic_write(path, lambda tmp: plain.export(str(tmp), format="litert", verbose=False), mode=None)


def export_onnx(plain, path):
    """ONNX through Keras' Model.export (tf2onnx underneath): any batch and size."""
    with warnings.catch_warnings():  # Keras' numpy-2 patch of tf2onnx warns about np.object
        warnings.simplefilter("ignore", FutureWarning)
        atomic.atomic_write(path, lambda tmp: plain.export(str(tmp), format="onnx", verbose=False), mode=None)


def run_onnx(path, L):
    import onnxruntime  # only here: export.py runs without it for the other formats
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: L.astype(np.float32)})[0]


def run_litert(path, L):
    interpreter = tf.lite.Interpreter(model_path=str(path))
    inp, = interpreter.get_input_details()
    out, = interpreter.get_output_details()
    interpreter.resize_tensor_input(inp["index"], L.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], L.astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])


def main(argv=None):
    opt = parse_options(argv)
    try:
        report = export(opt)
    except (ckpt.CheckpointError, atomic.NotWritable, ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a full disk: each file is whole or absent (util/atomic.py)
        print(f"error: cannot write the export ({e.strerror or e}): {e.filename or opt.output}", file=sys.stderr)
        return 1
    for name, info in report["formats"].items():
        where = info.get("file") or info.get("folder")
        print(f"{name}: {Path(opt.output) / where} (largest difference from the checkpoint {info['max_error']:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
