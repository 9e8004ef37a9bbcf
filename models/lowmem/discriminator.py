"""The PatchGAN of models/discriminator.py from memory-saving layers: the same variables in the same
order and the same function; read models/discriminator.py for the network itself."""
import keras
from keras import layers

from models.discriminator import LAYERS
from models.generator import kernel_initializer
from models.lowmem.convolutions import Conv2D
from models.lowmem.normalization import BatchNormActivation, LeakyReLU


def build_discriminator(dtype=None, sync_bn=False, initializer="reference", name="discriminator"):
    L = keras.Input((None, None, 1), name="L")
    ab = keras.Input((None, None, 2), name="ab")
    x = layers.Concatenate(name="condition", dtype=dtype)([L, ab])
    for i, (filters, stride, batchnorm) in enumerate(LAYERS):
        last = i == len(LAYERS) - 1
        x = Conv2D(filters, 4, stride, padding="same", name=f"conv{i}", dtype="float32" if last else dtype,
                   kernel_initializer=kernel_initializer(initializer))(x)
        if batchnorm:  # BN and LeakyReLU(0.2) as one layer, to save memory (normalization.py)
            x = BatchNormActivation(0.2, name=f"bn{i}", synchronized=sync_bn, dtype=dtype)(x)
        elif not last:
            x = LeakyReLU(negative_slope=0.2, name=f"lrelu{i}", dtype=dtype)(x)
    return keras.Model([L, ab], x, name=name)
