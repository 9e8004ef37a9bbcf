"""The generator in Keras' own layers only: the U-Net of the paper's figure, as anyone would write it.

It has the variables of models/generator.py's memory-saving builder, in the same order, so the
weights of any checkpoint copy into it one for one (`plain_generator_from`). Exported models
(export.py) are this one: `keras.models.load_model` opens them without this project's code.
"""
import keras
from keras import layers


def plain_generator(encoder, dropout_layers, output_channels=2, name="generator"):
    """encoder: [(filters, stride)] per layer; L (normalised to [-1, 1]) in, a*b* (/110) out."""
    inputs = keras.Input((None, None, 1), name="L")                 # (H, W, 1)
    x, skips = inputs, []
    for i, (filters, stride) in enumerate(encoder):                  # conv 4x4 - BN - LeakyReLU(0.2)
        x = layers.Conv2D(filters, 4, stride, padding="same", name=f"enc{i}_conv")(x)
        x = layers.BatchNormalization(name=f"enc{i}_bn")(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"enc{i}_lrelu")(x)
        skips.append(x)                                              # (H / 2^k, W / 2^k, filters)
    decoder = [filters for filters, _ in encoder[:-1]][::-1]
    for i, (filters, skip) in enumerate(zip(decoder, skips[-2::-1])):  # deconv 4x4 /2 - BN - ReLU
        x = layers.Conv2DTranspose(filters, 4, 2, padding="same", name=f"dec{i}_deconv")(x)
        x = layers.BatchNormalization(name=f"dec{i}_bn")(x)
        x = layers.ReLU(name=f"dec{i}_relu")(x)
        if i < dropout_layers:
            x = layers.Dropout(0.5, name=f"dec{i}_dropout")(x)
        x = layers.Concatenate(name=f"dec{i}_skip")([skip, x])      # U-Net skip connection
    outputs = layers.Conv2D(output_channels, 1, activation="tanh", name="ab")(x)  # (H, W, 2)
    return keras.Model(inputs, outputs, name=name)


def plain_generator_from(generator, encoder, dropout_layers):
    """A float32 plain-Keras copy of a generator built by models/generator.py (any precision)."""
    plain = plain_generator(encoder, dropout_layers)
    ours, theirs = generator.variables, plain.variables
    if [tuple(v.shape) for v in ours] != [tuple(v.shape) for v in theirs]:
        raise ValueError("the generator's variables do not match the plain U-Net's")
    for source, target in zip(ours, theirs):
        target.assign(keras.ops.cast(source, target.dtype))
    return plain
