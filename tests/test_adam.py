"""models/adam.py: the fused Adam update equals Keras' Adam, with the same variables."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from models.adam import Adam


@pytest.mark.parametrize("beta1", [0.0, 0.5])
def test_fused_adam_follows_keras_adam_step_by_step(beta1):
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(4, 4, 3, 8)).astype("float32"), rng.normal(size=(8,)).astype("float32")]
    runs = []
    for kind in (keras.optimizers.Adam, Adam):
        weights = [keras.Variable(w) for w in start]
        optimizer = kind(learning_rate=lambda: 3e-4, beta_1=beta1, beta_2=0.999, epsilon=1e-8)
        optimizer.build(weights)
        step = tf.function(lambda grads: optimizer.apply(grads, weights))
        for n in range(5):
            step([tf.constant(np.random.default_rng(n).normal(size=w.shape), tf.float32) for w in start])
        runs.append((weights, optimizer))
    (keras_weights, keras_adam), (fused_weights, fused_adam) = runs
    assert not np.allclose(fused_weights[0].numpy(), start[0])  # it moved
    for a, b in zip(keras_weights, fused_weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-7)
    # The same state in the same order: checkpoints written with one load into the other.
    assert [tuple(v.shape) for v in fused_adam.variables] == [tuple(v.shape) for v in keras_adam.variables]
    for a, b in zip(keras_adam.variables, fused_adam.variables):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-9)  # v: (1 - b2) g^2 rounds apart
