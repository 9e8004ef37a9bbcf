"""The 70x70 PatchGAN discriminator (docs/recipe.md, "Discriminator"): [L, a*b*] in, one logit per
overlapping 70x70 patch out. The network that trains, in either implementation of its layers
(models/layers.py).
"""
import keras
from keras import layers

from models.layers import layer_set

# (filters, stride, batchnorm) per layer, 4x4 kernels; the last one gives one logit per patch.
LAYERS = [(64, 2, False), (128, 2, True), (256, 2, True), (512, 1, True), (1, 1, False)]


def build_discriminator(dtype=None, sync_bn=False, initializer="reference", name="discriminator",
                        implementation="lowmem"):
    """Arguments as models/generator.py's build_generator."""
    blocks = layer_set(implementation, dtype, sync_bn, initializer)
    L = keras.Input((None, None, 1), name="L")                               # (H, W, 1)
    ab = keras.Input((None, None, 2), name="ab")                             # (H, W, 2)
    x = layers.Concatenate(name="condition", dtype=dtype)([L, ab])           # (H, W, 3)
    for i, (filters, stride, batchnorm) in enumerate(LAYERS):                # conv 4x4 - BN - LeakyReLU(0.2)
        last = i == len(LAYERS) - 1
        x = blocks.conv(x, f"conv{i}", filters, stride, dtype="float32" if last else None)
        if batchnorm:
            x = blocks.bn_act(x, f"bn{i}", f"lrelu{i}", 0.2)
        elif not last:
            x = blocks.leaky_relu(x, f"lrelu{i}", 0.2)
    return keras.Model([L, ab], x, name=name)                                # (H / 8, W / 8, 1) logits
