"""models/lowmem/normalization.py's evaluation protocols: BatchNorm's moving statistics, or each
batch's own as the reference code evaluated."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from models.lowmem import normalization
from models.generator import build_generator
from tests.helpers import TINY_ENCODER


def test_batch_statistics_at_inference_use_the_batch_and_leave_the_moving_averages():
    layer = normalization.BatchNormActivation(0.0)
    x = tf.constant(np.random.default_rng(0).normal(5.0, 2.0, (8, 4, 4, 3)), tf.float32)
    layer.build(x.shape)
    layer.moving_mean.assign([1.0, 2.0, 3.0])
    layer.moving_variance.assign([4.0, 4.0, 4.0])
    moving = layer(x, training=False).numpy()
    np.testing.assert_allclose(moving, np.maximum((x.numpy() - [1, 2, 3]) / np.sqrt(4 + layer.epsilon), 0), rtol=1e-5)

    layer.inference_batch_statistics = True
    batch = layer(x, training=False).numpy()
    mean, var = x.numpy().mean(axis=(0, 1, 2)), x.numpy().var(axis=(0, 1, 2))
    np.testing.assert_allclose(batch, np.maximum((x.numpy() - mean) / np.sqrt(var + layer.epsilon), 0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(layer.moving_variance.numpy(), [4.0, 4.0, 4.0])


def test_the_protocol_switch_reaches_every_batchnorm_of_the_generator_and_keeps_dropout_off():
    keras.utils.set_random_seed(1)
    generator = build_generator(TINY_ENCODER, 1)
    L = tf.constant(np.random.default_rng(1).uniform(-1, 1, (4, 16, 16, 1)), tf.float32)
    moving = generator(L, training=False).numpy()
    normalization.set_inference_statistics(generator, "batch")
    norms = [layer for layer in generator._flatten_layers(include_self=False)
             if isinstance(layer, normalization.BatchNormActivation)]
    assert len(norms) == 3 + 2 and all(layer.inference_batch_statistics for layer in norms)
    before = [v.numpy() for v in generator.non_trainable_variables]
    first, second = generator(L, training=False).numpy(), generator(L, training=False).numpy()
    np.testing.assert_array_equal(first, second)  # no dropout: the same batch gives the same colours
    assert np.abs(first - moving).max() > 1e-3  # fresh moving averages (0, 1) differ from the batch's
    # Each image's colours depend on the rest of its batch, as in the reference's evaluation.
    assert np.abs(generator(L[:2], training=False).numpy() - first[:2]).max() > 1e-4
    for b, a in zip(before, generator.non_trainable_variables):
        np.testing.assert_array_equal(b, a.numpy())
    normalization.set_inference_statistics(generator, "moving")
    np.testing.assert_allclose(generator(L, training=False).numpy(), moving, atol=1e-6)
    with pytest.raises(ValueError, match="valid: moving, batch"):
        normalization.set_inference_statistics(generator, "test")
