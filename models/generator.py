"""The U-Net generator of Nazeri et al. (docs/recipe.md, "Generator"): L in, a*b* out.

This is the network to read and to change. Every layer uses 4x4 kernels and 'same' padding, so
the network is fully convolutional: built with unknown height and width, it takes any size that
is a multiple of 2 ** (stride-2 encoder layers) (models/presets.py).

models/lowmem/generator.py builds the same variables in the same order from memory-saving layers
(`--implementation lowmem`, the default: faster and far smaller, README "Speed"); tests/test_models.py
and tests/test_memory.py check that both compute the same function. To try an idea, change this file
and train with `--implementation plain` (the equivalence tests then fail, as they should, until the
lowmem builder follows), or copy it into a new network with one line in models/registry.py.
"""
import keras
from keras import layers

from models.presets import narrow

# Reference code: every convolution kernel from TF1's tf.variance_scaling_initializer defaults,
# VarianceScaling(1.0, fan_in, truncated normal) (LeCun-like); biases zero. "glorot" (Keras'
# default, which this project used before) is kept for the ablation of docs/time_to_quality.md.
INITIALIZERS = {
    "reference": lambda: keras.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal"),
    "glorot": lambda: keras.initializers.GlorotUniform(),
}


def kernel_initializer(name):
    """A new initializer instance per layer (one instance shared by layers would repeat values)."""
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; valid: {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name]()


def build_generator(encoder, dropout_layers, output_channels=2, dtype=None, sync_bn=False,
                    initializer="reference", dropout=0.5, zero_head=False, name="generator"):
    """U-Net, L (normalised to [-1, 1]) in, a*b* (/110) out.

    encoder: (filters, stride) per layer (models/presets.py); the decoder mirrors it without its
    last layer, and its first `dropout_layers` layers have dropout at rate `dropout`.
    dtype: a Keras dtype policy ("mixed_bfloat16", "mixed_float16") or None for float32.
    sync_bn: BatchNorm statistics over all replicas of a tf.distribute strategy (no new variable).
    initializer: the kernels' initializer (INITIALIZERS). zero_head: the colour head's kernel
    starts at zero, so that the untrained network predicts grey (docs/time_to_quality.md).
    """
    def conv(kind, filters, stride, name):
        return kind(filters, 4, stride, padding="same", name=name, dtype=dtype,
                    kernel_initializer=kernel_initializer(initializer))

    inputs = keras.Input((None, None, 1), name="L")                   # (H, W, 1)
    x, skips = inputs, []
    for i, (filters, stride) in enumerate(encoder):                    # conv 4x4 - BN - LeakyReLU(0.2)
        x = conv(layers.Conv2D, filters, stride, f"enc{i}_conv")(x)
        x = layers.BatchNormalization(synchronized=sync_bn, name=f"enc{i}_bn", dtype=dtype)(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"enc{i}_lrelu", dtype=dtype)(x)
        skips.append(x)                                                # (H / 2^k, W / 2^k, filters)
    decoder = [filters for filters, _ in encoder[:-1]][::-1]
    for i, (filters, skip) in enumerate(zip(decoder, skips[-2::-1])):   # deconv 4x4 /2 - BN - ReLU
        x = conv(layers.Conv2DTranspose, filters, 2, f"dec{i}_deconv")(x)
        x = layers.BatchNormalization(synchronized=sync_bn, name=f"dec{i}_bn", dtype=dtype)(x)
        x = layers.ReLU(name=f"dec{i}_relu", dtype=dtype)(x)
        if i < dropout_layers:
            drop = layers.Dropout(0.5, name=f"dec{i}_dropout", dtype=dtype)
            # Made at 0.5 so that its seed variable exists at any rate (Keras makes none at 0):
            # the variables, and so the checkpoints, do not depend on the rate.
            drop.rate = dropout
            x = drop(x)
        x = layers.Concatenate(name=f"dec{i}_skip", dtype=dtype)([skip, x])  # the U-Net skip
    # The colour head stays float32 under mixed precision: tanh saturates badly in half precision.
    head = layers.Conv2D(output_channels, 1, activation="tanh", name="ab", dtype="float32",
                         kernel_initializer="zeros" if zero_head else kernel_initializer(initializer))
    return keras.Model(inputs, head(x), name=name)                     # (H, W, 2)


def build_narrow_generator(encoder, dropout_layers, **kwargs):
    """The same U-Net at half the width of every layer (`--generator unet-narrow`): a quarter of
    the weights and FLOPs, for photographs on a CPU (docs/photos.md)."""
    return build_generator(narrow(encoder), dropout_layers, **kwargs)


def plain_generator_from(generator, config, dtype=None):
    """A copy of a generator of either implementation in Keras' own layers (export.py): the network
    the checkpoint's config names (models/registry.py), float32, or dtype ("float16") where given."""
    from models.registry import GENERATORS, builder  # the registry names this module's builders
    build = builder(GENERATORS, config.get("generator", "unet"), "plain")
    plain = build(config["encoder"], config["dropout_layers"], dtype=dtype)
    copy_variables(generator, plain)
    return plain


def copy_variables(source, target):
    ours, theirs = source.variables, target.variables
    if [tuple(v.shape) for v in ours] != [tuple(v.shape) for v in theirs]:
        raise ValueError(f"{source.name}'s variables do not match {target.name}'s")
    for a, b in zip(ours, theirs):
        b.assign(keras.ops.cast(a, b.dtype))
