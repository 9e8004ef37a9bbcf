"""The fast 4x4 stride-2 convolutions give Keras' results and gradients, on every code path."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from models.lowmem import convolutions
from models.lowmem.convolutions import Conv2D, Conv2DTranspose


def outputs_and_gradients(layer, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.sin(y))  # a non-trivial output gradient
    return [y] + tape.gradient(loss, [x, layer.kernel, layer.bias])


def twin_layers(fast_class, keras_class, channels, x, stride=2):
    fast = fast_class(channels, 4, stride, padding="same")
    reference = keras_class(channels, 4, stride, padding="same")
    fast.build(x.shape)
    reference.build(x.shape)
    rng = np.random.default_rng(1)
    weights = [rng.normal(0, 0.2, w.shape).astype("float32") for w in reference.get_weights()]
    fast.set_weights(weights)
    reference.set_weights(weights)
    return fast, reference


# (height, width) covering the phase/patch paths (small) and TensorFlow's kernels (large), odd sizes too.
SIZES = [(1, 1), (2, 2), (3, 5), (4, 4), (8, 8), (9, 7), (16, 16), (17, 12), (40, 34)]


@pytest.mark.parametrize("layer_classes, stride", [((Conv2D, keras.layers.Conv2D), 2),
                                                   ((Conv2D, keras.layers.Conv2D), 1),
                                                   ((Conv2DTranspose, keras.layers.Conv2DTranspose), 2)],
                         ids=["conv", "conv-stride-1", "transposed"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_fast_layers_match_keras_outputs_and_gradients(layer_classes, stride, size):
    x = tf.constant(np.random.default_rng(0).normal(size=(2, *size, 5)), tf.float32)
    fast, reference = twin_layers(*layer_classes, 6, x, stride)
    assert fast._fast()
    for got, want in zip(outputs_and_gradients(fast, x), outputs_and_gradients(reference, x)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4 * float(tf.reduce_max(tf.abs(want))))


@pytest.mark.parametrize("size", [(4, 6), (40, 34)])
def test_unknown_sizes_choose_the_path_when_running(size):
    """Inference functions are traced with unknown height and width: tf.cond picks the path."""
    x = tf.constant(np.random.default_rng(0).normal(size=(1, *size, 3)), tf.float32)
    for layer_classes in [(Conv2D, keras.layers.Conv2D), (Conv2DTranspose, keras.layers.Conv2DTranspose)]:
        fast, reference = twin_layers(*layer_classes, 4, x)
        spec = tf.TensorSpec([None, None, None, 3], tf.float32)
        traced = tf.function(lambda v, layer=fast: outputs_and_gradients(layer, v), input_signature=[spec])
        for got, want in zip(traced(x), outputs_and_gradients(reference, x)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)


def test_small_images_really_take_the_fast_paths(monkeypatch):
    """Guards the dispatch itself: on 4x4 images neither slow TensorFlow kernel may run."""
    def refuse(*args, **kwargs):
        raise AssertionError("TensorFlow's slow kernel was used on a small image")
    monkeypatch.setattr(convolutions.tf.nn, "conv2d_transpose", refuse)
    monkeypatch.setattr(convolutions.tf.raw_ops, "Conv2DBackpropFilter", refuse)
    x = tf.random.normal((2, 4, 4, 3))
    for layer in (Conv2D(4, 4, 2, padding="same"), Conv2DTranspose(4, 4, 2, padding="same")):
        outputs_and_gradients(layer, x)
    monkeypatch.undo()
    monkeypatch.setattr(convolutions.tf.raw_ops, "Conv2DBackpropInput", refuse)
    outputs_and_gradients(Conv2D(4, 4, 1, padding="same"), x)


def test_other_configurations_fall_back_to_keras():
    layer = Conv2D(4, 3, 1, padding="same")
    x = tf.random.normal((1, 5, 5, 2))
    assert layer(x).shape == (1, 5, 5, 4)
    assert not layer._fast()


def test_mixed_precision_computes_in_bfloat16_with_float32_variables():
    layer = Conv2DTranspose(4, 4, 2, padding="same", dtype="mixed_bfloat16")
    y = layer(tf.random.normal((2, 4, 4, 3)))
    assert y.dtype == tf.bfloat16 and layer.kernel.dtype == "float32"
