"""The networks as built: the reference initialiser's spread (or Keras' Glorot) in every kernel,
and the zero colour head that predicts grey until it learns."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from models.discriminator import build_discriminator
from models.generator import build_generator
from models.presets import PRESETS
from tests.helpers import TINY_ENCODER


def convolution_kernels(model):
    return [(layer.name, layer.kernel.numpy()) for layer in model._flatten_layers(include_self=False)
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]


@pytest.mark.parametrize("initializer", ["reference", "glorot"])
def test_every_kernel_has_the_reference_initialisers_spread(initializer):
    # VarianceScaling(1.0, fan_in, truncated normal): standard deviation sqrt(1 / fan_in), no value
    # beyond two standard deviations of the untruncated normal (reference code; docs/recipe.md).
    # Keras' fan_in is kernel height x width x shape[-2], for transposed convolutions as in TF1.
    keras.utils.set_random_seed(0)
    preset = PRESETS["cifar10"]
    kernels = (convolution_kernels(build_generator(preset["encoder"], preset["dropout_layers"], initializer=initializer))
               + convolution_kernels(build_discriminator(initializer=initializer)))
    assert len(kernels) == 5 + 4 + 1 + 5  # encoder, decoder, colour head, discriminator
    distinct = 0
    for name, kernel in kernels:
        fan_in = kernel.shape[0] * kernel.shape[1] * kernel.shape[-2]
        fan_out = kernel.shape[0] * kernel.shape[1] * kernel.shape[-1]
        reference, glorot = np.sqrt(1.0 / fan_in), np.sqrt(2.0 / (fan_in + fan_out))
        expected = reference if initializer == "reference" else glorot
        if kernel.size >= 10000:  # enough values for the standard deviation to be within 3 %
            assert abs(kernel.std() / expected - 1) < 0.03, name
            distinct += abs(reference / glorot - 1) > 0.1
        if initializer == "reference":
            assert np.abs(kernel).max() <= 2 * expected / 0.87962566 + 1e-7, name
    assert distinct >= 5  # layers where the two initialisers differ by more than 10 %


def test_a_zero_head_predicts_grey_until_it_learns():
    # --zero-head: the untrained U-Net predicts a*b* = 0 (no colour) for any input, yet its
    # colour head still receives a gradient, so the first step moves it away from grey.
    keras.utils.set_random_seed(0)
    generator = build_generator(TINY_ENCODER, 1, zero_head=True)
    L = tf.random.uniform((2, 16, 16, 1), -1, 1)
    assert np.array_equal(generator(L, training=False).numpy(), np.zeros((2, 16, 16, 2), np.float32))
    target = tf.random.uniform((2, 16, 16, 2), -0.5, 0.5)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.abs(generator(L, training=True) - target))
    head = generator.get_layer("ab").kernel
    gradient = tape.gradient(loss, head)
    assert float(tf.reduce_max(tf.abs(gradient))) > 0
    # without the option the untrained network predicts colours
    other = build_generator(TINY_ENCODER, 1)
    assert float(tf.reduce_mean(tf.abs(other(L, training=False)))) > 0.05


def test_each_network_is_written_once_and_both_implementations_build_it_with_the_same_variable_paths():
    # The file a reader edits is the one that trains: every implementation builds models/generator.py's
    # and models/discriminator.py's networks, with the same variables under the same names.
    from models import discriminator, generator, registry
    for implementation in registry.IMPLEMENTATIONS:
        assert registry.builder(registry.GENERATORS, "unet", implementation).func is generator.build_generator
        assert registry.builder(registry.DISCRIMINATORS, "patchgan", implementation).func is \
            discriminator.build_discriminator
    for build in (lambda i: build_generator(TINY_ENCODER, 1, implementation=i),
                  lambda i: build_discriminator(implementation=i)):
        lowmem, plain = build("lowmem"), build("plain")
        named = [[v.path for v in model.variables if "seed_generator" not in v.path]  # dropout seeds: numbered
                 for model in (lowmem, plain)]
        assert named[0] == named[1] and len(named[0]) > 10
        assert any(v.path == "enc0_conv/kernel" for v in lowmem.variables) or lowmem.name == "discriminator"
    with pytest.raises(ValueError, match="unknown implementation 'fast'; valid: lowmem, plain"):
        build_generator(TINY_ENCODER, 1, implementation="fast")
