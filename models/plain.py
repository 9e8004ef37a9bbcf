"""The paper's networks in Keras' own layers only, as anyone would write them from its figure.

They have the variables of the memory-saving builders (models/generator.py, models/discriminator.py),
in the same order, so any checkpoint loads into either (`--implementation plain|lowmem`), and
exported models (export.py) are these: `keras.models.load_model` opens them without this project.
"""
import keras
from keras import layers

from models.generator import kernel_initializer


def plain_generator(encoder, dropout_layers, output_channels=2, dtype=None, sync_bn=False,
                    initializer="reference", dropout=0.5, zero_head=False, name="generator"):
    """U-Net, L (normalised to [-1, 1]) in, a*b* (/110) out; arguments as build_generator's."""
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
            drop.rate = dropout  # made at 0.5 so its seed variable exists at any rate
            x = drop(x)
        x = layers.Concatenate(name=f"dec{i}_skip", dtype=dtype)([skip, x])  # the U-Net skip
    # The colour head stays float32 under mixed precision: tanh saturates badly in half precision.
    head = layers.Conv2D(output_channels, 1, activation="tanh", name="ab", dtype="float32",
                         kernel_initializer="zeros" if zero_head else kernel_initializer(initializer))
    return keras.Model(inputs, head(x), name=name)                     # (H, W, 2)


def plain_discriminator(dtype=None, sync_bn=False, initializer="reference", name="discriminator"):
    """70x70 PatchGAN, [L, a*b*] in, one logit per patch out; arguments as build_discriminator's."""
    from models.discriminator import LAYERS
    L = keras.Input((None, None, 1), name="L")
    ab = keras.Input((None, None, 2), name="ab")
    x = layers.Concatenate(name="condition", dtype=dtype)([L, ab])
    for i, (filters, stride, batchnorm) in enumerate(LAYERS):
        last = i == len(LAYERS) - 1
        x = layers.Conv2D(filters, 4, stride, padding="same", name=f"conv{i}", dtype="float32" if last else dtype,
                          kernel_initializer=kernel_initializer(initializer))(x)
        if batchnorm:
            x = layers.BatchNormalization(synchronized=sync_bn, name=f"bn{i}", dtype=dtype)(x)
        if not last:
            x = layers.LeakyReLU(negative_slope=0.2, name=f"lrelu{i}", dtype=dtype)(x)
    return keras.Model([L, ab], x, name=name)


def plain_generator_from(generator, encoder, dropout_layers):
    """A float32 plain-Keras copy of a generator built by models/generator.py (any precision)."""
    plain = plain_generator(encoder, dropout_layers)
    copy_variables(generator, plain)
    return plain


def copy_variables(source, target):
    ours, theirs = source.variables, target.variables
    if [tuple(v.shape) for v in ours] != [tuple(v.shape) for v in theirs]:
        raise ValueError(f"{source.name}'s variables do not match {target.name}'s")
    for a, b in zip(ours, theirs):
        b.assign(keras.ops.cast(a, b.dtype))
