"""Trained generators for inference: from a training checkpoint (the network and implementation
it names, its weight average where it has one, either BatchNorm protocol) or from export.py's
generator.keras (checked against the SHA-256 its export.json records). test.py, colorize.py,
serve.py, export.py and tools/figures.py load models here.
"""
import dataclasses
import json
from pathlib import Path

import keras
import tensorflow as tf

from models import checkpoint as ckpt
from models.architecture import STANDALONE, Architecture
from models.checkpoint import EMA_GROUP
from models.colorization import mixed_precision_policy
from models.lowmem.normalization import set_inference_statistics
from models.registry import GENERATORS, builder
from options import stored_options


def load_for_inference(path, mixed_precision=None, bn_statistics="moving", weights="ema"):
    """A model restored from a checkpoint file or run folder, plus its (options, state);
    or export.py's generator.keras (load_exported).

    mixed_precision: None runs the generator in the precision it was trained in; True / False
    choose 16-bit (bfloat16 on CPUs, float16 on GPUs) or float32 inference whatever the training
    was: the variables are float32 either way, so only the generator's weights are read.
    bn_statistics: "moving" (BatchNorm's moving averages) or "batch" (each batch's own statistics,
    as the reference code evaluated; models/lowmem/normalization.py).
    weights: "ema" takes the average of the generator's weights (train.py --g-ema) where the
    checkpoint has one, "raw" the weights as trained; `model.weights_used` says which was read.
    """
    if weights not in ("ema", "raw"):
        raise ValueError(f"weights must be 'ema' or 'raw', not {weights!r}")
    path = ckpt.resolve_checkpoint(path)
    if path.suffix == ".keras":
        return load_exported(path, bn_statistics)
    architecture, options, state = ckpt.read_metadata(path)
    if mixed_precision is not None:
        architecture = dataclasses.replace(architecture, mixed_precision=bool(mixed_precision))
    # The network and implementation the run trained (models/registry.py). Keras' own BatchNorm has
    # no batch-statistics inference: that protocol takes the memory-saving layers (the same variables).
    implementation = "lowmem" if bn_statistics == "batch" else stored_options(options)["implementation"]
    # The generator alone: no discriminator, no optimizers, no weight average.
    build = builder(GENERATORS, architecture.generator, implementation)
    generator = build(architecture.encoder, architecture.dropout_layers,
                      dtype=mixed_precision_policy() if architecture.mixed_precision else None)
    group = generator_group(path, weights)
    ckpt.restore_variables(path, {group: generator.variables})
    model = GeneratorOnly(generator, architecture, "ema" if group == EMA_GROUP else "raw")
    try:
        set_inference_statistics(generator, bn_statistics)
    except ValueError as e:
        raise ckpt.CheckpointError(f"{path}: the {architecture.generator} generator: {e}") from None
    return model, options, state


class GeneratorOnly:
    """A generator alone where inference expects a model: `predict_ab`, its `architecture` and
    `weights_used`. The weight average of a training run (`ema_view`), or an export."""

    def __init__(self, generator, architecture, weights_used="raw"):
        self.generator, self.architecture, self.weights_used = generator, architecture, weights_used
        self._predict = tf.function(lambda L: tf.cast(generator(L, training=False), tf.float32),
                                    input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])

    def predict_ab(self, L):
        return self._predict(tf.convert_to_tensor(L, tf.float32))


def generator_group(path, weights="ema"):
    """The checkpoint group to read a generator from: the weight average (--g-ema) where `weights`
    is "ema" and the checkpoint has one, else the trained weights."""
    return EMA_GROUP if weights == "ema" and EMA_GROUP in ckpt.group_names(path) else "generator"


def ema_view(model):
    """The weight average (--g-ema) of a training model, for evaluation; made once per model, so
    that its prediction function is traced once, not at every evaluation."""
    if getattr(model, "_ema_view", None) is None:
        model._ema_view = GeneratorOnly(model.generator_ema, model.architecture, "ema")
    return model._ema_view


class ExportedGenerator(GeneratorOnly):
    """export.py's generator.keras: an architecture of a generator alone (its training model is in
    export.json), its image size, and the encoder's strides that fix the sizes it takes."""

    def __init__(self, generator, image_size, weights_used="raw"):
        # The strided convolutions fix the sizes the network takes (models/presets.py).
        strided = [(layer.filters, layer.strides[0]) for layer in generator._flatten_layers(include_self=False)
                   if type(layer) is keras.layers.Conv2D]
        super().__init__(generator, Architecture(STANDALONE, strided, 0, image_size), weights_used)


def load_exported(path, bn_statistics="moving", check_digest=True):
    """(model, options, state) of export.py's generator.keras: BatchNorm's moving statistics, run in
    float32 (float16 weights, export.py --float16, are widened on loading). The run's options and
    state come from the export.json beside it (export.py writes both), which also holds the file's
    SHA-256: a file that does not match it is refused. Without an export.json only colorize.py
    works, and it needs --size."""
    if bn_statistics != "moving":
        raise ckpt.CheckpointError(f"{path}: an exported generator has BatchNorm's moving statistics only; "
                                   f"--bn-statistics batch needs a training checkpoint (step_*.h5)")
    meta_path = Path(path).with_name("export.json")
    try:
        meta = export_record(json.loads(meta_path.read_text()) if meta_path.exists() else {}, meta_path)
    except (OSError, ValueError) as e:
        raise ckpt.CheckpointError(f"{meta_path} is unreadable ({e})") from None
    ckpt.check_readable(path)
    if check_digest and meta.get("previous") and _keras_digest(meta) != ckpt.sha256(path):
        # export.py was stopped before it put the new file in place: the file is the previous one
        meta = export_record(meta["previous"], meta_path)
    digest = _keras_digest(meta)
    if check_digest and digest and ckpt.sha256(path) != digest:
        raise ckpt.CheckpointError(f"{path} is damaged or was replaced: its SHA-256 is not the one {meta_path.name} "
                                   f"records (restore it, e.g. git checkout -- {Path(path).name})")
    try:
        generator = keras.models.load_model(path, compile=False)  # safe mode: no code is deserialised
    except Exception as e:  # Keras raises many kinds for a bad file
        raise ckpt.CheckpointError(f"{path} is not a Keras model ({type(e).__name__}: "
                                   f"{str(e).strip().splitlines()[0] if str(e).strip() else 'unreadable'})") from None
    shapes = (tuple(generator.inputs[0].shape) if len(generator.inputs) == 1 else None,
              tuple(generator.outputs[0].shape) if len(generator.outputs) == 1 else None)
    if shapes[0] is None or shapes[1] is None or shapes[0][-1] != 1 or shapes[1][-1] != 2:
        raise ckpt.CheckpointError(f"{path} is not a colorization generator (L in, a*b* out): its inputs and "
                                   f"outputs are {shapes}")
    generator = in_float32(generator)
    options = meta.get("options") or {}
    state = meta.get("state") or {"step": meta.get("step", 0), "epoch": 0}
    image_size = options.get("image_size") or meta.get("image_size")
    if not (image_size is None or type(image_size) is int and 0 < image_size <= 8192):
        raise ckpt.CheckpointError(f"{meta_path} records the image size {image_size!r}, not a size in pixels: "
                                   f"export again, or remove it and pass --size")
    model = ExportedGenerator(generator, image_size, meta.get("weights", "raw"))
    return model, options, state


def export_record(meta, meta_path):
    """The contents of an export.json, checked to be what export.py writes (CheckpointError)."""
    if not (isinstance(meta, dict) and all(isinstance(meta.get(k) or {}, dict)
                                           for k in ("options", "state", "formats", "previous"))
            and isinstance((meta.get("formats") or {}).get("keras") or {}, dict)):
        raise ckpt.CheckpointError(f"{meta_path} is not what export.py writes (a JSON object of the run's options "
                                   f"and state): export again, or remove it and pass --size")
    return meta


def _keras_digest(meta):
    return ((meta.get("formats") or {}).get("keras") or {}).get("sha256")


def in_float32(model):
    """The same Keras model computing in float32 (a copy, where any layer is in another dtype)."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def widened(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=widened)
    for a, b in zip(model.variables, copy.variables):
        b.assign(keras.ops.cast(a, b.dtype))
    return copy
