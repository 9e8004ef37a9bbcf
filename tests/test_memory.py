import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.generator import build_generator
from models.lowmem import normalization
from models.lowmem.normalization import BatchNormActivation


def plain_keras_generator(*args, **kwargs):  # Keras' own layers: what ours must equal
    return build_generator(*args, implementation="plain", **kwargs)

ROOT = Path(__file__).resolve().parent.parent


def keras_pair(slope, dtype):
    """Keras' own BatchNormalization + activation, the layers BatchNormActivation replaces."""
    bn = keras.layers.BatchNormalization(dtype=dtype)
    act = keras.layers.LeakyReLU(negative_slope=slope, dtype=dtype) if slope else keras.layers.ReLU(dtype=dtype)
    return bn, lambda x, training: act(bn(x, training=training))


def run(layer_fn, variables, x, training, upstream):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer_fn(x, training)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
    return [y] + tape.gradient(loss, [x] + variables)


@pytest.mark.parametrize("fused", [True, False], ids=["fused-gradient", "written-out-gradient"])
@pytest.mark.parametrize("slope", [0.0, 0.2], ids=["relu", "leaky-relu"])
@pytest.mark.parametrize("synchronized", [False, True], ids=["local", "synchronized"])
def test_same_outputs_gradients_and_statistics_as_keras_layers(slope, synchronized, fused, monkeypatch):
    # The written-out gradient is the one GPUs and synchronized replicas use.
    monkeypatch.setattr(normalization, "fused_gradient", lambda: fused)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(1.5, 2.0, (4, 6, 5, 3)), tf.float32)
    upstream = tf.constant(rng.normal(size=(4, 6, 5, 3)), tf.float32)
    ours = BatchNormActivation(negative_slope=slope, synchronized=synchronized)
    bn, theirs = keras_pair(slope, None)
    bn.synchronized = synchronized
    ours.build(x.shape), bn.build(x.shape)
    for v in (ours.gamma, bn.gamma):
        v.assign([0.5, -1.0, 2.0])
    for v in (ours.beta, bn.beta):
        v.assign([0.1, 0.3, -0.2])
    for training in (True, False):
        a = run(lambda x, t: ours(x, training=t), [ours.gamma, ours.beta], x, training, upstream)
        b = run(theirs, [bn.gamma, bn.beta], x, training, upstream)
        for name, p, q in zip(["output", "dx", "dgamma", "dbeta"], a, b):
            np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(ours.moving_mean.numpy(), bn.moving_mean.numpy(), rtol=1e-6)
        np.testing.assert_allclose(ours.moving_variance.numpy(), bn.moving_variance.numpy(), rtol=1e-5)
    assert not np.allclose(ours.moving_mean.numpy(), 0)  # the training call moved the statistics
    assert [v.path for v in ours.variables] == [v.path.replace(bn.name, ours.name) for v in bn.variables]


def test_mixed_precision_keeps_the_input_dtype_and_float32_statistics():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 8, 8, 4)), tf.float32)
    upstream = tf.constant(rng.normal(size=(2, 8, 8, 4)), tf.float32)
    ours = BatchNormActivation(negative_slope=0.2, dtype="mixed_bfloat16")
    bn, theirs = keras_pair(0.2, "mixed_bfloat16")
    x16 = tf.cast(x, tf.bfloat16)
    ours.build(x.shape), bn.build(x.shape)
    a = run(lambda x, t: ours(x, training=t), [ours.gamma, ours.beta], x16, True, upstream)
    b = run(theirs, [bn.gamma, bn.beta], x16, True, upstream)
    assert a[0].dtype == a[1].dtype == tf.bfloat16 and ours.moving_mean.dtype == "float32"
    for name, p, q in zip(["output", "dx", "dgamma", "dbeta"], a, b):
        np.testing.assert_allclose(tf.cast(p, tf.float32).numpy(), tf.cast(q, tf.float32).numpy(),
                                   rtol=2e-2, atol=2e-2, err_msg=name)


def test_a_bfloat16_training_step_makes_no_float32_copy_of_the_activations():
    # The batch statistics come from the normalising kernel itself: neither the forward nor the
    # backward pass casts a full-size activation to float32 (what tf.nn.moments on a float32
    # copy did, 6 % of the bfloat16 GAN step's op time).
    ours = BatchNormActivation(negative_slope=0.2, dtype="mixed_bfloat16")
    ours.build((8, 4, 4, 16))

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = ours(x, training=True)
        return tape.gradient(tf.reduce_sum(tf.cast(y, tf.float32)), [x, ours.gamma])

    graph = step.get_concrete_function(tf.TensorSpec((8, 4, 4, 16), tf.bfloat16)).graph
    full_size_casts = [op.name for op in graph.get_operations() if op.type == "Cast"
                       and op.outputs[0].dtype == tf.float32 and op.outputs[0].shape.num_elements() == 8 * 4 * 4 * 16]
    assert len(full_size_casts) == 1, full_size_casts  # the test's own loss, and nothing else
    before = ours.moving_mean.numpy().copy()
    step(tf.ones((8, 4, 4, 16), tf.bfloat16) * 3)
    np.testing.assert_allclose(ours.moving_mean.numpy(), before * 0.99 + 3 * 0.01, rtol=1e-6)


@pytest.mark.parametrize("graph", ["eager", "tf.function", "xla"])
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_the_memory_saving_generator_equals_the_plain_keras_one(training, graph):
    encoder = [(8, 1), (16, 2), (16, 2), (32, 2)]
    ours, plain = build_generator(encoder, 1), plain_keras_generator(encoder, 1)
    assert [tuple(v.shape) for v in ours.variables] == [tuple(v.shape) for v in plain.variables]
    rng = np.random.default_rng(0)
    for a, b in zip(ours.variables, plain.variables):
        if "seed_generator" not in a.path:  # (the dropout seeds are copied as they are)
            value = rng.normal(0.5 if "variance" in a.path else 0.0, 0.3, a.shape).astype("float32")
            a.assign(np.abs(value) if "variance" in a.path else value)
        b.assign(a.numpy())
    L = tf.constant(rng.uniform(-1, 1, (4, 16, 16, 1)), tf.float32)
    upstream = tf.constant(rng.normal(size=(4, 16, 16, 2)), tf.float32)
    results = []
    for model in (ours, plain):
        def forward_and_backward():
            with tf.GradientTape() as tape:
                y = model(L, training=training)
                loss = tf.reduce_sum(y * upstream)
            return [y] + tape.gradient(loss, model.trainable_variables)
        if graph == "eager":
            outputs = forward_and_backward()
        else:
            outputs = tf.function(forward_and_backward, jit_compile=graph == "xla")()
        results.append(outputs + [v for v in model.non_trainable_variables if "seed" not in v.path])
    for (a, b), variable in zip(zip(*results), ["output"] + [v.path for v in ours.trainable_variables]
                                + [v.path for v in ours.non_trainable_variables if "seed" not in v.path]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5, err_msg=variable)


MEMORY_PROBE = """
import sys
import numpy as np, tensorflow as tf
# One op at a time: the peak is then the graph's, not that of however the scheduler interleaved
# ops on a loaded machine (CI once saw 134 MB for ours against 95-114 MB here).
tf.config.threading.set_inter_op_parallelism_threads(1)
from models.generator import build_generator
encoder = [(32, 1), (32, 2), (64, 2), (64, 2)]
model = build_generator(encoder, 1, implementation="lowmem" if sys.argv[1] == "ours" else "plain")
L = tf.random.uniform([8, 128, 128, 1], -1, 1)

@tf.function
def step():
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.abs(model(L, training=True)))
    return tape.gradient(loss, model.trainable_variables)

step()
peaks = []
for _ in range(3):  # the smallest of three steps
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    step()
    peaks.append(tf.config.experimental.get_memory_info("CPU:0")["peak"] - before)
print(min(peaks))
"""


def test_the_generator_step_needs_far_less_memory_than_with_plain_keras_layers():
    # TensorFlow's BFC allocator on the CPU counts every tensor of the step, exactly.
    env = {**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": "true", "TF_CPP_MIN_LOG_LEVEL": "2"}
    peaks = {}
    for kind in ("ours", "plain"):
        result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, kind], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        peaks[kind] = int(result.stdout.split()[-1])
    assert peaks["ours"] < 0.6 * peaks["plain"], peaks


def test_leaky_relu_from_its_output_has_keras_values_and_gradients():
    x = tf.constant(np.random.default_rng(2).normal(size=(3, 5, 5, 4)), tf.float32)
    results = []
    for layer in (normalization.LeakyReLU(negative_slope=0.2), keras.layers.LeakyReLU(negative_slope=0.2)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.range(y.shape[-1], dtype=tf.float32))
        results.append((y.numpy(), tape.gradient(loss, x).numpy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
