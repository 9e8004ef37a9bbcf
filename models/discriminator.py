"""The 70x70 PatchGAN discriminator (docs/recipe.md, "Discriminator"): [L, a*b*] in, one logit per
overlapping 70x70 patch out.

This is the network to read and to change; models/lowmem/discriminator.py builds the same
variables from memory-saving layers (`--implementation lowmem`).
"""
import keras
from keras import layers

from models.generator import kernel_initializer

# (filters, stride, batchnorm) per layer, 4x4 kernels; the last one gives one logit per patch.
LAYERS = [(64, 2, False), (128, 2, True), (256, 2, True), (512, 1, True), (1, 1, False)]


def build_discriminator(dtype=None, sync_bn=False, initializer="reference", name="discriminator"):
    """Arguments as models/generator.py's build_generator."""
    L = keras.Input((None, None, 1), name="L")                         # (H, W, 1)
    ab = keras.Input((None, None, 2), name="ab")                       # (H, W, 2)
    x = layers.Concatenate(name="condition", dtype=dtype)([L, ab])     # (H, W, 3)
    for i, (filters, stride, batchnorm) in enumerate(LAYERS):          # conv 4x4 - BN - LeakyReLU(0.2)
        last = i == len(LAYERS) - 1
        x = layers.Conv2D(filters, 4, stride, padding="same", name=f"conv{i}", dtype="float32" if last else dtype,
                          kernel_initializer=kernel_initializer(initializer))(x)
        if batchnorm:
            x = layers.BatchNormalization(synchronized=sync_bn, name=f"bn{i}", dtype=dtype)(x)
        if not last:
            x = layers.LeakyReLU(negative_slope=0.2, name=f"lrelu{i}", dtype=dtype)(x)
    return keras.Model([L, ab], x, name=name)                          # (H / 8, W / 8, 1) logits
